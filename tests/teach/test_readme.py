"""The README's code runs as printed: a learner's first contact must not fail."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FLAG = re.compile(r"--[a-z][a-z-]*")


def test_every_python_block_in_the_readme_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    for block in blocks:
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)
        if "h" in namespace:  # the training-step example: the retained intermediate got its gradient
            assert namespace["h"].grad.shape == namespace["h"].shape


@pytest.mark.parametrize("script", ["train", "sample"])
def test_the_readme_names_every_flag_of_the_scripts(script, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    module = __import__(script)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    flags = set(FLAG.findall(capsys.readouterr().out)) - {"--help"}
    missing = flags - set(FLAG.findall(README.read_text()))
    assert flags and not missing, f"README.md does not name {script}.py's {sorted(missing)}"
