"""Smoke tests of the two reporting scripts: they run end to end and write what they promise."""
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import bench  # noqa: E402
import reproduce  # noqa: E402


def test_bench_columns_agree_and_the_table_is_written(tmp_path):
    """bench.py first checks that engine, torch and plain NumPy take the same float64
    step (it raises otherwise), then times them; a tiny run exercises all of it."""
    out = tmp_path / "BENCH.md"
    bench.main(["--sizes", "32", "--reps", "1", "--steps-per-rep", "3", "--warmup-steps", "2",
                "--random-data", "--markdown", str(out)])
    text = out.read_text()
    assert "same weight update" in text
    row = next(line for line in text.splitlines() if line.startswith("| 32 |"))
    assert len(row.split("|")) == 13  # batch, threads, steps, 3 columns x (min, median), 2 ratios
    assert "Target at batch 32: engine/torch" in text


def test_reproduce_writes_results_with_every_row(tmp_path):
    results = tmp_path / "docs" / "RESULTS.md"
    reproduce.main(["--steps", "20", "--models", "mlp3", "hier22k", "--out", str(tmp_path / "runs"),
                    "--results", str(results)])
    text = results.read_text()
    assert "| mlp3:" in text and "| hier22k:" in text and "12,097" in text and "22,397" in text
    assert (results.parent / "results" / "hier22k.png").is_file()
