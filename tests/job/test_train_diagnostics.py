"""scripts/train.py --diagnostics (part 3's figures and numbers of a run), the recorder
behind it, and loss.png's validation points."""
import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_wave.functional as F
from tinygrad_wave import manual_seed, no_grad, optim, teach
from tinygrad_wave.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train  # noqa: E402

FIGURES = ["activations.png", "gradients.png", "weights.png", "update_ratio.png"]


def small_run(words_file, out, *extra):
    return ["--data", str(words_file), "--out", str(out), "--model", "hier22k", "--n-embd", "4",
            "--n-hidden", "8", "--batch-size", "8", "--steps", "40", "--eval-every", "20",
            "--num-samples", "2", "--quiet", *extra]


def log_of(out):
    return json.loads((out / "log.json").read_text())


def test_diagnostics_write_four_figures_and_their_numbers_without_changing_training(words_file, tmp_path):
    assert train.main(small_run(words_file, tmp_path / "plain")) == 0
    assert train.main(small_run(words_file, tmp_path / "diag", "--diagnostics")) == 0
    plain, diag = log_of(tmp_path / "plain"), log_of(tmp_path / "diag")
    assert diag["losses"] == plain["losses"]  # recording changes nothing in the run
    assert plain["diagnostics"] is None and not any((tmp_path / "plain" / f).exists() for f in FIGURES)
    for name in FIGURES:
        assert (tmp_path / "diag" / name).stat().st_size > 1000, name

    numbers = diag["diagnostics"]
    assert [row["layer"] for row in numbers["activations"]] == [4, 8, 12]
    assert [row["layer"] for row in numbers["gradients"]] == [4, 8, 12]
    assert all(0 <= row["saturated"] <= 1 and row["std"] > 0 for row in numbers["activations"])
    weights = ["layers.0.weight", "layers.2.weight", "layers.6.weight", "layers.10.weight", "layers.13.weight"]
    assert [row["name"] for row in numbers["weights"]] == weights
    ratios = numbers["update_ratios"]
    assert ratios["step"] == list(range(1, 41)) and sorted(ratios) == sorted(weights + ["step"])
    assert all(-8 < r < 1 for name in weights for r in ratios[name])


def test_a_resumed_run_keeps_the_whole_runs_update_ratios(words_file, tmp_path, monkeypatch):
    """Stopped at step 25 and resumed with --diagnostics: log.json's update-to-data ratios cover
    steps 1-40, the unbroken run's numbers exactly, as its losses do. The clock is stopped, as
    when both sessions start within one second: the second's event file must not replace the first's."""
    import tensorboardX.event_file_writer
    monkeypatch.setattr(tensorboardX.event_file_writer.time, "time", lambda: 1_700_000_000.0)
    assert train.main(small_run(words_file, tmp_path / "whole", "--diagnostics")) == 0

    def ctrl_c_at_step_25(run):
        if run.step == 25:
            signal.raise_signal(signal.SIGINT)

    broken = tmp_path / "broken"
    assert train.main(small_run(words_file, broken, "--diagnostics"), on_step=ctrl_c_at_step_25) == train.INTERRUPTED
    assert log_of(broken)["diagnostics"]["update_ratios"]["step"] == list(range(1, 26))
    assert train.main(small_run(words_file, broken, "--diagnostics", "--resume")) == 0
    whole, resumed = log_of(tmp_path / "whole"), log_of(broken)
    assert resumed["losses"] == whole["losses"]
    assert resumed["diagnostics"]["update_ratios"] == whole["diagnostics"]["update_ratios"]
    events = events_of(broken)  # both sessions' TensorBoard events, each step once
    assert [e.step for e in events.Scalars("UpdateRatio/layers.0.weight")] == list(range(1, 41))
    assert [e.step for e in events.Scalars("Loss/train")] == [20, 25, 40]  # Ctrl-C ended a stretch at 25


def test_overwrite_removes_a_previous_runs_figures(words_file, tmp_path):
    assert train.main(small_run(words_file, tmp_path, "--diagnostics")) == 0
    assert train.main(small_run(words_file, tmp_path, "--overwrite")) == 0
    assert not any((tmp_path / f).exists() for f in FIGURES)


def test_diagnostics_figures_are_titled_with_the_run_they_show(words_file, tmp_path, monkeypatch):
    """Like loss.png: a figure copied out of its folder still says which run and step it shows."""
    titles = {}
    monkeypatch.setattr(teach.recorder, "save_figure", lambda path, draw, title=None: titles.update({path.name: title}))
    assert train.main(small_run(words_file, tmp_path, "--diagnostics")) == 0
    log = log_of(tmp_path)
    run = f"hier22k ({log['params']:,} parameters), batch 8, seed {log['config']['seed']}"
    assert titles == {name: f"{run}: step 40" for name in FIGURES}


def test_save_figure_puts_the_title_over_the_figure(tmp_path):
    pytest.importorskip("matplotlib")
    drawn = []
    teach.save_figure(tmp_path / "f.png", drawn.append, title="hier76k, step 5")
    assert drawn[0].figure.get_suptitle() == "hier76k, step 5"
    assert (tmp_path / "f.png").stat().st_size > 1000


def tiny_training(diagnostics, steps=3, lr=0.1):
    manual_seed(0)
    model = build_model(vocab_size=27, block_size=8, n_embd=4, n_hidden=8)
    opt = optim.SGD(model.parameters(), lr)
    rng = np.random.default_rng(0)
    for step in range(1, steps + 1):
        loss = F.cross_entropy(model(rng.integers(0, 27, (16, 8))), rng.integers(0, 27, 16))
        diagnostics.before_backward(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        diagnostics.after_step(model, step, lr)
    return model


def test_the_recorder_reports_the_last_training_step_even_after_an_evaluation(tmp_path):
    diagnostics = teach.TrainingDiagnostics()
    model = tiny_training(diagnostics)
    expected = dict(activations=teach.activation_stats(model).records(),
                    gradients=teach.gradient_stats(model).records(), weights=teach.weight_stats(model).records())
    model.eval()
    with no_grad():  # an evaluation replaces every layer.out with outputs that have no gradient
        model(np.zeros((5, 8), dtype=np.int64))
    numbers = diagnostics.write(tmp_path)
    for key, rows in expected.items():
        assert numbers[key] == json.loads(json.dumps(rows)), key
    assert numbers["update_ratios"]["step"] == [1, 2, 3]


def test_a_weight_that_did_not_move_is_null_in_strict_json(tmp_path):
    diagnostics = teach.TrainingDiagnostics(every=2)
    tiny_training(diagnostics, steps=4, lr=0.0)  # lr 0: every update is 0, its log10 minus infinity
    numbers = diagnostics.write(tmp_path)
    assert numbers["update_ratios"]["step"] == [2, 4]
    assert numbers["update_ratios"]["layers.2.weight"] == [None, None]
    json.dumps(numbers, allow_nan=False)


def test_nothing_recorded_writes_nothing(tmp_path):
    assert teach.TrainingDiagnostics().write(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_loss_plot_shows_the_validation_evaluations():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    evals = [dict(step=100, split="val", loss=2.5), dict(step=200, split="val", loss=2.2),
             dict(step=200, split="train", loss=2.0)]
    train.draw_losses(ax, [3.0] * 100 + [2.0] * 100, evals, window=10, title="hier76k: loss")
    assert ax.get_title() == "hier76k: loss"
    train_line, val_line = ax.get_lines()
    assert list(val_line.get_xdata()) == [100, 200]
    np.testing.assert_allclose(val_line.get_ydata(), [2.5, 2.2])  # the loss itself, as every printed loss,
    np.testing.assert_allclose(train_line.get_ydata()[[0, -1]], [3.0, 2.0])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "loss (log scale)"  # on an axis that says how
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train (mean of 10 steps)", "val (whole split)"]


def test_diagnostics_of_a_model_without_layers_are_refused(words_file, tmp_path, capsys):
    argv = ["--data", str(words_file), "--out", str(tmp_path), "--model", "wavenet", "--steps", "2",
            "--quiet", "--diagnostics"]
    assert train.main(argv) == 2
    assert "--diagnostics reads the layers" in capsys.readouterr().err


def events_of(out):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(out), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def test_a_run_logs_to_tensorboard_what_log_json_holds(words_file, tmp_path):
    """The events in --out (TensorBoard's reader): per stretch of steps the mean training loss
    and the lr, each val loss, the final losses; with --diagnostics the update ratios and the
    Tanh layers' activation statistics and histograms at each evaluation."""
    out = tmp_path / "run"
    assert train.main(small_run(words_file, out, "--diagnostics")) == 0
    log, events = log_of(out), events_of(out)
    losses = log["losses"]  # two stretches: they end at each evaluation (--eval-every 20)
    assert [(e.step, e.value) for e in events.Scalars("Loss/train")] == [
        (20, pytest.approx(np.mean(losses[:20]), rel=1e-6)), (40, pytest.approx(np.mean(losses[20:]), rel=1e-6))]
    assert [(e.step, e.value) for e in events.Scalars("Loss/val")] == [(20, pytest.approx(
        next(e["loss"] for e in log["evals"] if e["split"] == "val"), rel=1e-6))]
    assert [e.step for e in events.Scalars("lr")] == [20, 40]
    for split in ["train", "val", "test"]:
        assert events.Scalars(f"Final/{split}")[0].value == pytest.approx(log["final"][split], rel=1e-6)
    ratios = log["diagnostics"]["update_ratios"]
    got = events.Scalars("UpdateRatio/layers.0.weight")
    assert [e.step for e in got] == ratios["step"]
    np.testing.assert_allclose([e.value for e in got], ratios["layers.0.weight"], rtol=1e-6)
    tags = events.Tags()
    assert [e.step for e in events.Scalars("Activations/layers.4.saturated")] == [20]
    assert tags["histograms"] == ["Activations/layers.4", "Activations/layers.8", "Activations/layers.12"]


def test_overwrite_starts_the_tensorboard_history_again(words_file, tmp_path):
    out = tmp_path / "run"
    assert train.main(small_run(words_file, out)) == 0
    assert train.main(small_run(words_file, out, "--overwrite", "--seed", "3")) == 0
    assert len(list(out.glob(train.TENSORBOARD_EVENTS))) == 1
    assert len(events_of(out).Scalars("Loss/val")) == 1
