"""scripts/reproduce.py's RESULTS.md names the commands that made its rows."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import reproduce  # noqa: E402


def runs(*seeds):
    return [dict(seed=s) for s in seeds]


def test_rows_with_the_same_seeds_are_one_command():
    assert reproduce.commands_of({"mlp3": runs(42), "hier76k": runs(42)}) == ["python scripts/reproduce.py --seeds 42"]


def test_rows_with_other_seeds_are_named_with_their_seeds():
    summary = {"mlp3": runs(42), "hier76k": runs(44, 42, 43), "wavenet": runs(42, 43, 44)}
    assert reproduce.commands_of(summary) == ["python scripts/reproduce.py --models mlp3 --seeds 42",
                                              "python scripts/reproduce.py --models hier76k wavenet --seeds 42 43 44"]
