"""The README's code runs as printed: a learner's first contact must not fail."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_python_block_in_the_readme_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    for block in blocks:
        namespace = {}
        exec(compile(block, str(README), "exec"), namespace)
        if "h" in namespace:  # the training-step example: the retained intermediate got its gradient
            assert namespace["h"].grad.shape == namespace["h"].shape
