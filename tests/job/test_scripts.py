"""The scripts end to end: the two reporting scripts write what they promise, and every
script turns bad input into one `error:` line and exit status 2, never a traceback."""
import importlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import bench  # noqa: E402
import reproduce  # noqa: E402
import sample  # noqa: E402
import train  # noqa: E402

from tinygrad_wave import training  # noqa: E402


def test_bench_columns_agree_and_the_table_is_written(tmp_path):
    """bench.py first checks that engine, torch and plain NumPy take the same float64
    step (it raises otherwise), then times them; a tiny run exercises all of it."""
    out = tmp_path / "BENCH.md"
    bench.main(["--sizes", "32", "--reps", "1", "--steps-per-rep", "3", "--warmup-steps", "2",
                "--random-data", "--no-compile", "--markdown", str(out)])
    text = out.read_text()
    assert "same weight update" in text
    row = next(line for line in text.splitlines() if line.startswith("| 32 |"))
    assert len(row.split("|")) == 16  # batch, threads, steps, 4 columns x (min, median), 3 ratios
    assert "Target at batch 32: engine/torch" in text and "Target at batch 32: jit/numpy" in text
    assert "equal engine's bit for bit" in text


def test_reproduce_writes_results_with_every_row(tmp_path):
    results = tmp_path / "docs" / "RESULTS.md"
    reproduce.main(["--serial", "--steps", "20", "--models", "mlp3", "hier22k", "--out", str(tmp_path / "runs"),
                    "--results", str(results)])
    text = results.read_text()
    assert "| mlp3:" in text and "| hier22k:" in text and "12,097" in text and "22,397" in text
    assert (results.parent / "results" / "hier22k.png").is_file()
    # a sweep's record, kept beside summary.json, comes after the table and stays when the rows are written again
    (results.parent / "results" / reproduce.SWEEP_RECORD).write_text("## The sweep\n\nval 1.96 at lr 0.09\n")
    reproduce.main(["--serial", "--steps", "20", "--models", "mlp3", "--out", str(tmp_path / "runs"),
                    "--results", str(results)])
    text = results.read_text()
    assert "| mlp3:" in text and "| hier22k:" in text
    assert text.index("| hier22k:") < text.index("## The sweep\n\nval 1.96 at lr 0.09\n") < text.index("## mlp3")


def test_reproduce_keeps_the_rows_and_seeds_it_did_not_run(tmp_path):
    """Rows (and seeds) run at different times end up in one table, through results/summary.json;
    a seed's result is replaced when it runs again, and only results with the same steps are kept."""
    results, runs = tmp_path / "docs" / "RESULTS.md", str(tmp_path / "runs")
    for argv in (["--models", "mlp3", "--seeds", "1"], ["--models", "mlp3", "wavenet", "--seeds", "2"]):
        assert reproduce.main(["--serial", "--steps", "10", "--out", runs, "--results", str(results), *argv]) == 0
    summary = json.loads((results.parent / "results" / "summary.json").read_text())
    assert [r["seed"] for r in summary["mlp3"]] == [1, 2] and [r["seed"] for r in summary["wavenet"]] == [2]
    assert "| mlp3:" in results.read_text() and "| wavenet:" in results.read_text()
    assert reproduce.main(["--serial", "--steps", "12", "--out", runs, "--results", str(results), "--models", "mlp3", "--seeds", "2"]) == 0
    summary = json.loads((results.parent / "results" / "summary.json").read_text())
    assert [(r["seed"], r["steps"]) for r in summary["mlp3"]] == [(2, 12)] and summary["wavenet"][0]["steps"] == 10


# --- bad input ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(words_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train.main(["--data", str(words_file), "--out", str(out), "--model", "mlp3", "--n-hidden", "16",
                       "--steps", "20", "--num-samples", "0", "--quiet"]) == 0
    return out / "checkpoint.npz"


def refused(main, argv, capsys):
    """The one error line of a script refusing `argv` with status 2."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's refusals
        status = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def rewritten(checkpoint, path, meta=None, **members):
    """A copy of `checkpoint` at `path` with its config updated by `meta` and members replaced or added."""
    with np.load(checkpoint, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    info = json.loads(str(arrays.pop("__meta__")))
    info["config"].update(meta or {})
    arrays.update(members)
    np.savez(path, __meta__=np.array(json.dumps(info)), **arrays)
    return path


def with_meta(checkpoint, path, change):
    """A copy of `checkpoint` at `path` whose metadata is change(metadata)."""
    with np.load(checkpoint, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    info = json.loads(str(arrays.pop("__meta__")))
    np.savez(path, __meta__=np.array(json.dumps(change(info))), **arrays)
    return path


def set_field(path, value):
    """change(meta) for with_meta: the field at `path` (keys into the metadata) set to value."""
    def change(meta):
        holder = meta
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
        return meta
    return change


@pytest.mark.parametrize("change, named", [
    (lambda meta: [meta], "metadata is a JSON list"),
    (set_field(["rng_state", "position"], 10 ** 9), "position must be an int in [0, 624]"),
    (set_field(["rng_state", "position"], 700), "position must be an int in [0, 624]"),
    (set_field(["rng_state", "words"], [1, 2]), "words must be a list of 624"),
    (set_field(["evals"], 5), "'evals' must be a list"),
    (set_field(["seconds"], "x"), "'seconds' must be a finite number"),
    (set_field(["step"], -1), "'step' must be an integer"),
    (set_field(["config", "dtype"], "float16"), "dtype must be 'float32' or 'float64'"),
], ids=["list", "position-1e9", "position-700", "words", "evals", "seconds", "step", "float16"])
def test_resume_checks_every_field_of_the_checkpoint_before_training(checkpoint, tmp_path, capsys, monkeypatch,
                                                                     change, named):
    """A position past the twister's words killed the process (SIGSEGV) at the first batch."""
    def no_training(*args, **kwargs):
        raise AssertionError("a step was trained")
    monkeypatch.setattr(training.Run, "train", no_training)
    with_meta(checkpoint, tmp_path / "checkpoint.npz", change)
    message = refused(train.main, ["--out", tmp_path, "--resume"], capsys)
    assert "is not a checkpoint of train.py" in message and named in message


def test_resume_refuses_a_weight_stored_in_another_dtype(checkpoint, tmp_path, capsys):
    with np.load(checkpoint) as f:
        weight = f["model.layers.0.weight"]
    rewritten(checkpoint, tmp_path / "checkpoint.npz", **{"model.layers.0.weight": weight.astype(np.int64)})
    message = refused(train.main, ["--out", tmp_path, "--resume"], capsys)
    assert "model.layers.0.weight is stored as int64, expected float32" in message


def test_train_refuses_bad_flags(words_file, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for argv, expected in [(["--seed", "-1"], "--seed: must be 0 or more"),
                           (["--lr", "inf"], "--lr: must be a positive finite number"),
                           (["--steps", "0"], "--steps: must be a positive integer"),
                           (["--out", tmp_path / "file"], "is a file, not a folder"),
                           (["--out", tmp_path / "file" / "run"], "cannot write to --out"),
                           (["--resume", "--overwrite"], "not allowed with argument")]:
        assert expected in refused(train.main, ["--data", words_file, "--quiet", *argv], capsys)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", "truncated"], ids=["empty", "text", "truncated"])
def test_sample_and_resume_refuse_a_damaged_checkpoint(checkpoint, tmp_path, capsys, content):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(checkpoint.read_bytes()[:len(checkpoint.read_bytes()) // 2] if content == "truncated" else content)
    assert "is not a checkpoint of train.py" in refused(sample.main, ["--checkpoint", bad], capsys)
    assert "is not a checkpoint of train.py" in refused(train.main, ["--out", tmp_path, "--resume"], capsys)


def test_sample_refuses_bad_flags(checkpoint, tmp_path, capsys):
    for argv, expected in [(["--seed", "-1"], "--seed: must be 0 or more"),
                           (["--num", "-3"], "--num: must be 0 or more"),
                           (["--temperature", "nan"], "--temperature: must be a positive finite number"),
                           (["--temperature", "inf"], "--temperature: must be a positive finite number"),
                           (["--temperature", "0"], "--temperature: must be a positive finite number"),
                           (["--temperature", "1e-310"], "--temperature: must be a positive finite number"),
                           (["--checkpoint", tmp_path / "missing.npz"], "there is no checkpoint at")]:
        assert expected in refused(sample.main, ["--checkpoint", checkpoint, *argv], capsys)


def test_sample_at_a_tiny_temperature_picks_the_likeliest_character(checkpoint, capsys):
    """Dividing the logits by 1e-300 overflows unless the largest is subtracted first."""
    assert sample.main(["--checkpoint", str(checkpoint), "--temperature", "1e-300", "--num", "3"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(set(names)) == 1  # no randomness left: the same greedy name every time


def test_sample_refuses_an_absurd_config_before_building_the_model(checkpoint, tmp_path, capsys, monkeypatch):
    def build_model(*args, **kwargs):
        raise AssertionError("the model was built")
    monkeypatch.setattr(training, "build_model", build_model)
    absurd = rewritten(checkpoint, tmp_path / "absurd.npz", meta={"n_hidden": 10_000_000})
    assert "parameters, more than the" in refused(sample.main, ["--checkpoint", absurd], capsys)


def test_sample_reads_only_the_members_a_checkpoint_has(checkpoint, tmp_path, capsys):
    # a pickled member is never read, so never unpickled
    extra = rewritten(checkpoint, tmp_path / "extra.npz")
    with zipfile.ZipFile(extra, "a") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
        archive.writestr("payload.npy", buffer.getvalue())
    assert sample.main(["--checkpoint", str(extra), "--num", "2"]) == 0
    capsys.readouterr()
    # a member of the wrong shape is refused from its header, before its data is read
    wrong = rewritten(checkpoint, tmp_path / "wrong.npz", **{"model.layers.0.weight": np.zeros((2, 2))})
    assert "model.layers.0.weight has shape (2, 2)" in refused(sample.main, ["--checkpoint", wrong], capsys)


def test_reproduce_refuses_bad_flags_and_a_truncated_log(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for argv, expected in [(["--seeds", "-1"], "--seeds: must be 0 or more"),
                           (["--steps", "0"], "--steps: must be a positive integer"),
                           (["--out", tmp_path / "file"], "is a file, not a folder")]:
        assert expected in refused(reproduce.main, ["--models", "mlp3", *argv], capsys)
    runs = tmp_path / "runs"
    (runs / "mlp3-seed42-20steps").mkdir(parents=True)
    (runs / "mlp3-seed42-20steps" / "log.json").write_text('{"config": {"model": "ml')
    message = refused(reproduce.main, ["--models", "mlp3", "--steps", "20", "--out", runs,
                                       "--results", tmp_path / "RESULTS.md"], capsys)
    assert "log.json is damaged" in message


def test_bench_refuses_bad_flags(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    (tmp_path / "tabs.txt").write_text("anna\nbo\tb\n")
    for argv, expected in [(["--reps", "0"], "--reps: must be a positive integer"),
                           (["--warmup-steps", "0"], "--warmup-steps: must be a positive integer"),
                           (["--steps-per-rep", "0"], "--steps-per-rep: must be a positive integer"),
                           (["--block-seconds", "nan"], "--block-seconds: must be a positive finite number"),
                           (["--seed", "-1"], "--seed: must be 0 or more"),
                           (["--markdown", tmp_path / "file" / "B.md"], "--markdown " + str(tmp_path / "file") + " is a file"),
                           (["--data", tmp_path / "tabs.txt"], "line 2: the control character")]:
        assert expected in refused(bench.main, ["--sizes", "32", *argv], capsys)


def test_bench_wavenet_states_positions_per_second_and_the_target(capsys):
    import bench_wavenet
    lines = bench_wavenet.main(["--reps", "1", "--seconds", "0.05"])
    rows = [line for line in lines if line.startswith("| hier76k") or line.startswith("| wavenet")]
    assert [row.split(" | ")[0] for row in rows] == ["| hier76k per position", "| hier76k as conv", "| wavenet"]
    assert all(float(row.split(" | ")[4].replace(",", "")) > 0 for row in rows)  # the median positions/s
    assert any(line.startswith("Target: the convolutional forward and backward") for line in lines)


def test_bench_makemore_times_both_columns_and_profiles_the_eager_step(tmp_path, capsys):
    import bench_makemore
    out = tmp_path / "BENCH.md"
    table = bench_makemore.main(["--reps", "1", "--steps", "2", "--profile", "5", "--inside-ops", "--matrix-products",
                                 "--overhead", "--markdown", str(out)])
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and not line.startswith("| column")]
    assert [row[0] for row in rows] == ["| tinygrad_wave", "| tinygrad_wave jit", "| torch eager",
                                        "| its matrix products alone, NumPy", "| its matrix products alone, torch",
                                        "| tinygrad_wave, one name", "| torch eager, one name"]
    assert rows[2][2] == "1.00x |" and rows[6][2] == "1.00x |"  # each table against its own torch row
    assert all(float(row[1]) > 0 for row in rows)  # the median steps/s
    assert table in out.read_text()
    printed = capsys.readouterr().out
    assert "tottime" in printed and "tinygrad_wave/" in printed  # cProfile's table of the engine's functions
    assert "ms of it inside ops" in printed.splitlines()[-1]


def test_bench_makemore_columns_take_the_same_steps():
    """The columns start from the same weights and take the same AdamW steps on the same batch,
    so the table compares the same work; the jit's replays (calls 3 and 4) are eager's to the bit."""
    import bench_makemore
    train = bench_makemore.training_data()
    X, Y = (np.stack([train[i][k].numpy() for i in range(32)]) for k in (0, 1))
    losses, steps = {}, {}
    for name, lib in bench_makemore.LIBRARIES.items():
        steps[name] = bench_makemore.training_step(lib, train, capture=name.endswith("jit"))
        losses[name] = [steps[name](lib.tensor(X), lib.tensor(Y)).item() for _ in range(4)]
    assert steps["tinygrad_wave jit"].replayed == 2 and losses["tinygrad_wave jit"] == losses["tinygrad_wave"]
    np.testing.assert_allclose(losses["tinygrad_wave"], losses["torch eager"], rtol=1e-5)
    assert losses["torch eager"][2] < losses["torch eager"][0]  # the steps did train


def test_bench_gpt_times_its_columns_and_the_time_inside_ops(capsys):
    import bench_gpt
    bench_gpt.main(["--reps", "1", "--steps", "2", "--inside-ops", "--matrix-products", "--overhead"])
    lines = capsys.readouterr().out.splitlines()
    names = [line.split(" | ")[0] for line in lines if line.startswith("| ") and not line.startswith("| column")]
    assert names == ["| tinygrad_wave", "| tinygrad_wave jit", "| torch eager", "| its matrix products alone, NumPy",
                     "| its matrix products alone, torch", "| tinygrad_wave, one 2-token window",
                     "| torch eager, one 2-token window"]
    step, in_ops, ratio, torch_step = (float(x) for x in re.match(
        r"tinygrad_wave eager with its ops timed: ([\d.]+) ms a step, ([\d.]+) ms of it inside ops "
        r"\(([\d.]+)x torch eager's whole step, ([\d.]+) ms\)", lines[-1]).groups())
    assert 0 < in_ops < step and ratio == pytest.approx(in_ops / torch_step, abs=0.01)


@pytest.mark.parametrize("script", ["bench_gpt", "bench_makemore"])
@pytest.mark.parametrize("column", ["tinygrad_wave", "torch eager"])
def test_bench_alone_times_one_column_and_counts_its_page_faults(script, column, capsys):
    bench = importlib.import_module(script)
    line = bench.main(["--alone", column, "--reps", "1", "--steps", "2"])
    assert capsys.readouterr().out == line + "\n"
    rate, faults = re.fullmatch(re.escape(column) + r", alone in its process: ([\d.]+) steps/s; "
                                r"page faults a step: (\d+)", line).groups()
    assert float(rate) > 0 and int(faults) >= 0


def test_bench_alone_names_its_columns(capsys):
    import bench_gpt
    with pytest.raises(SystemExit):
        bench_gpt.main(["--alone", "torch"])
    err = capsys.readouterr().err
    assert "--alone" in err and "invalid choice" in err  # (argparse quotes the choices or not, by Python version)
    assert all(name in err.split("choose from")[1] for name in ("tinygrad_wave", "tinygrad_wave jit", "torch eager"))


@pytest.mark.parametrize("script, flag", [("bench_gpt", "--overhead"), ("bench_makemore", "--profile")])
def test_bench_alone_refuses_the_flags_that_need_the_other_columns(script, flag, capsys):
    bench = importlib.import_module(script)
    with pytest.raises(SystemExit):
        bench.main(["--alone", "tinygrad_wave", flag, *(["3"] if flag == "--profile" else [])])
    assert f"--alone times one column by itself: leave out {flag}" in capsys.readouterr().err


def test_the_matrix_products_of_a_step_are_each_linear_and_matmul_forward_and_backward():
    """A linear on (4, 3, 5) rows into 7 features, then a batched product with its transpose:
    every GEMM their forward and backward make, with x (no grad) getting none."""
    from benchmark.profile import step_matrix_products

    import tinygrad_wave
    weight = tinygrad_wave.randn(7, 5, requires_grad=True)

    def step(x):
        h = tinygrad_wave.nn.functional.linear(x, weight)
        (h @ h.transpose(-2, -1)).sum().backward()
    products = step_matrix_products(step, (tinygrad_wave.randn(4, 3, 5),))
    assert products == [((12, 5), (5, 7)), ((7, 12), (12, 5)),  # linear: forward and dW (no dx: x needs none)
                        ((4, 3, 7), (4, 7, 3)), ((4, 3, 3), (4, 3, 7)), ((4, 7, 3), (4, 3, 3))]  # h @ h^T, da, db


def test_sample_says_a_log_is_not_a_checkpoint_and_never_suggests_pickle(checkpoint, capsys):
    """A file that is not an .npz (the run's log.json beside its checkpoint) is refused as not a
    checkpoint; NumPy's own message would suggest loading it with allow_pickle."""
    log = checkpoint.parent / "log.json"
    assert log.is_file()
    message = refused(sample.main, ["--checkpoint", log], capsys)
    assert "is not a checkpoint of train.py" in message and "pickle" not in message
