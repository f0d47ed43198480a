"""scripts/reproduce.py's RESULTS.md names the commands that made its rows, and its runs on Ray
record what its serial runs record."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import reproduce  # noqa: E402


def runs(*seeds):
    return [dict(seed=s) for s in seeds]


def test_rows_with_the_same_seeds_are_one_command():
    assert reproduce.commands_of({"mlp3": runs(42), "hier76k": runs(42)}) == ["python scripts/reproduce.py --seeds 42"]


def test_rows_with_other_seeds_are_named_with_their_seeds():
    summary = {"mlp3": runs(42), "hier76k": runs(44, 42, 43), "wavenet": runs(42, 43, 44)}
    assert reproduce.commands_of(summary) == ["python scripts/reproduce.py --models mlp3 --seeds 42",
                                              "python scripts/reproduce.py --models hier76k wavenet --seeds 42 43 44"]


@pytest.mark.skipif(not reproduce.ray_installed(), reason="the sweep extra (ray) is not installed")
def test_runs_as_ray_tasks_give_the_serial_runs_results(tmp_path):
    """Two seeds at once on two cores record what one after another records, times apart."""
    def summary(how):
        results = tmp_path / how[0] / "RESULTS.md"
        assert reproduce.main([*how, "--models", "mlp3", "--seeds", "1", "2", "--steps", "30",
                               "--out", str(tmp_path / how[0] / "runs"), "--results", str(results)]) == 0
        rows = json.loads((results.parent / "results" / "summary.json").read_text())
        return {model: [{k: v for k, v in run.items() if k != "seconds"} for run in runs] for model, runs in rows.items()}
    assert summary(["--cpus", "2"]) == summary(["--serial"])
