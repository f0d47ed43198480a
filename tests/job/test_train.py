"""scripts/train.py and scripts/sample.py on a small word list: outputs, determinism,
Ctrl-C and resume, checkpoints, bad input. Each run takes well under a second."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import sample  # noqa: E402
import train  # noqa: E402

from tinygrad_wave.data import load_words, split_words  # noqa: E402
from tinygrad_wave.models import PRESETS, build_model, count_parameters, parameter_count  # noqa: E402
from tinygrad_wave.runfolder import RunFolder  # noqa: E402
from tinygrad_wave.training import Run  # noqa: E402

STEPS = 60


def small_run(words_file, out, *extra):
    """argv of a tiny hierarchical model: 8 chars of context, 4-dim embeddings, 8 hidden units."""
    return ["--data", str(words_file), "--out", str(out), "--model", "hier22k", "--n-embd", "4",
            "--n-hidden", "8", "--batch-size", "8", "--steps", str(STEPS), "--eval-every", "20",
            "--num-samples", "5", "--quiet", *extra]


def losses_of(out):
    return json.loads((out / "log.json").read_text())["losses"]


def test_a_run_writes_checkpoint_log_plot_and_samples(words_file, tmp_path, capsys):
    assert train.main(small_run(words_file, tmp_path)) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert len(log["losses"]) == STEPS and log["step"] == STEPS
    assert set(log["final"]) == {"train", "val", "test"}
    assert [(e["step"], e["split"]) for e in log["evals"]] == [
        (20, "val"), (40, "val"), (60, "train"), (60, "val"), (60, "test")]
    assert (tmp_path / "loss.png").stat().st_size > 1000
    lines = capsys.readouterr().out.strip().splitlines()
    samples, saved = lines[-6:-1], lines[-1]  # the names, then where the files are
    assert samples == log["samples"] and all("." not in s for s in samples)
    assert saved == f"saved in {tmp_path}/: checkpoint.npz, best.npz, log.json, loss.png, 1 TensorBoard event file"
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as f:  # no pickle needed
        assert "model.layers.0.weight" in f.files and "model.layers.3.running_var" in f.files


def test_same_seed_same_losses_bit_for_bit(words_file, tmp_path):
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert train.main(small_run(words_file, tmp_path / name, "--seed", seed)) == 0
    assert losses_of(tmp_path / "a") == losses_of(tmp_path / "b")
    assert losses_of(tmp_path / "a") != losses_of(tmp_path / "c")


def test_the_replayed_steps_are_the_eager_steps_bit_for_bit(words_file, tmp_path):
    """train.py replays its captured step by default; --no-jit builds the graph every step.
    Losses, weights and buffers agree to the last bit, so a checkpoint resumes either way."""
    replays = []
    assert train.main(small_run(words_file, tmp_path / "jit"),
                      on_step=lambda run: replays.append(run._replayed.replayed)) == 0
    assert train.main(small_run(words_file, tmp_path / "eager", "--no-jit")) == 0
    assert replays[-1] == STEPS - 2  # the first two steps are recorded eagerly, every later one replayed
    assert losses_of(tmp_path / "jit") == losses_of(tmp_path / "eager")
    replayed, eager = (Run.load(d / "checkpoint.npz").model.state_dict() for d in (tmp_path / "jit", tmp_path / "eager"))
    for name in eager:
        assert replayed[name].tobytes() == eager[name].tobytes(), name


def test_ctrl_c_then_resume_gives_the_unbroken_losses(words_file, tmp_path, capsys):
    assert train.main(small_run(words_file, tmp_path / "whole")) == 0

    def ctrl_c_at_step_25(run):
        if run.step == 25:
            signal.raise_signal(signal.SIGINT)  # the real signal, as a terminal sends it

    broken = tmp_path / "broken"
    assert train.main(small_run(words_file, broken), on_step=ctrl_c_at_step_25) == train.INTERRUPTED
    assert Run.load(broken / "checkpoint.npz").step == 25
    files = "checkpoint.npz, best.npz, log.json, loss.png"
    assert capsys.readouterr().out.splitlines()[-1] == f"saved in {broken}/: {files}, 1 TensorBoard event file"
    assert train.main(small_run(words_file, broken, "--resume")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"saved in {broken}/: {files}, 2 TensorBoard event files"

    assert losses_of(broken) == losses_of(tmp_path / "whole")
    whole, resumed = (Run.load(d / "checkpoint.npz").model.state_dict() for d in (tmp_path / "whole", broken))
    for name in whole:
        np.testing.assert_array_equal(whole[name], resumed[name], err_msg=name)


def test_resume_finds_the_data_and_knows_when_it_is_done(words_file, tmp_path, capsys):
    assert train.main(small_run(words_file, tmp_path)) == 0
    evals = json.loads((tmp_path / "log.json").read_text())["evals"]
    resume = ["--out", str(tmp_path), "--resume", "--quiet"]  # no --data: the checkpoint names it
    assert train.main(resume) == 0
    assert f"already finished {STEPS} steps: to train it further, pass --steps with a total above {STEPS}" \
        in capsys.readouterr().out
    assert train.main(resume + ["--steps", "50"]) == 0  # not above: the same answer, with what to pass
    assert f"pass --steps with a total above {STEPS}" in capsys.readouterr().out
    assert train.main(resume + ["--steps", "80"]) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["step"] == 80 and len(log["losses"]) == 80
    assert log["evals"][:len(evals)] == evals  # history kept, nothing repeated


def test_a_second_ctrl_c_inside_a_step_still_saves_a_whole_step(words_file, tmp_path):
    """Two presses inside one step: the step finishes, the run is saved there, and resuming
    it gives the unbroken run's losses (a half-updated step would not)."""
    def ctrl_c_twice_inside_step_25(run):
        if run.step != 24:
            return
        update = run.optimizer.step

        def interrupted_update():
            signal.raise_signal(signal.SIGINT)  # asks to stop after this step
            update()
            signal.raise_signal(signal.SIGINT)  # the impatient second press
        run.optimizer.step = interrupted_update

    assert train.main(small_run(words_file, tmp_path / "broken"), on_step=ctrl_c_twice_inside_step_25) == \
        train.INTERRUPTED
    assert Run.load(tmp_path / "broken" / "checkpoint.npz").step == 25
    assert train.main(small_run(words_file, tmp_path / "broken", "--resume")) == 0
    assert train.main(small_run(words_file, tmp_path / "whole")) == 0
    assert losses_of(tmp_path / "broken") == losses_of(tmp_path / "whole")


@pytest.mark.parametrize("lr, message", [("1e6", "the training loss grew from"),
                                         ("50", "more than 2 times a uniform guess's")], ids=["growth", "val"])
def test_a_plainly_failing_run_is_stopped_with_one_line_and_status_1(words_file, tmp_path, capsys, lr, message):
    """A learning rate far too high: the training loss grows a hundredfold (1e6), or the first
    val loss is more than twice a uniform guess's while the loss stays finite (50). Either ends
    the run as a loss that is not finite does, with no checkpoint of the failing state."""
    assert train.main(small_run(words_file, tmp_path, "--lr", lr)) == train.DIVERGED
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err and "at step 20" in err
    assert message in json.loads((tmp_path / "log.json").read_text())["diverged"]
    assert not (tmp_path / "checkpoint.npz").exists()
    assert out.splitlines()[-1] == f"saved in {tmp_path}/: log.json, loss.png, 1 TensorBoard event file"


@pytest.mark.parametrize("hidden", [["tqdm"], ["tqdm", "matplotlib"]], ids=str)
def test_without_the_scripts_extra_train_says_what_to_install(words_file, tmp_path, capsys, monkeypatch, hidden):
    """An install with only the teach extra has no tqdm: one error line naming the extra, before
    any work, instead of a bare ModuleNotFoundError."""
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)  # what `import name` then raises: ModuleNotFoundError
    assert train.main(small_run(words_file, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: train.py needs tqdm (the progress bar)") and err.count("\n") == 1
    assert ("matplotlib (loss.png)" in err) == ("matplotlib" in hidden) and 'pip install -e ".[scripts]"' in err
    assert not any(tmp_path.iterdir())


def test_train_py_starts_without_tqdm(words_file, tmp_path):
    """The script itself, in a Python where tqdm cannot be imported: the same one line, status 2."""
    hide_tqdm = "import runpy, sys; sys.modules['tqdm'] = None; sys.argv = sys.argv[1:]; " \
                "runpy.run_path(sys.argv[0], run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", hide_tqdm, str(SCRIPTS / "train.py"), *small_run(words_file, tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: train.py needs tqdm"), proc.stderr


def test_checkpoint_round_trip(words_file, tmp_path):
    assert train.main(small_run(words_file, tmp_path)) == 0
    run = Run.load(tmp_path / "checkpoint.npz")
    run.save(tmp_path / "again.npz")
    again = Run.load(tmp_path / "again.npz")
    assert (again.config, again.itos, again.step, again.losses) == (run.config, run.itos, run.step, run.losses)
    for name, array in run.model.state_dict().items():
        np.testing.assert_array_equal(again.model.state_dict()[name], array)
    assert run.sample(3, seed=1) == again.sample(3, seed=1)


def test_bad_input_exits_with_a_message(words_file, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert train.main(small_run(empty, tmp_path / "e")) == 2
    assert "no names" in capsys.readouterr().err
    assert train.main(small_run(words_file, tmp_path / "none", "--resume")) == 2
    assert "no checkpoint" in capsys.readouterr().err
    # resuming on other data than the run was trained on
    assert train.main(small_run(words_file, tmp_path / "m")) == 0
    other = tmp_path / "other.txt"
    other.write_text("zed\n" * 20)
    assert train.main(small_run(other, tmp_path / "m", "--resume", "--steps", "70")) == 2
    assert "not the file this run was trained on" in capsys.readouterr().err
    # a checkpoint that is not one
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.npz").write_text("not a zip")
    assert train.main(small_run(words_file, tmp_path / "bad", "--resume")) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert train.main(small_run(words_file, tmp_path / "b", "--batch-size", "1")) == 2
    assert "at least 2 for part 5's models: their batch norm" in capsys.readouterr().err


def test_a_refused_run_leaves_no_folder_behind(words_file, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "runs" / "e"  # neither folder exists yet
    assert train.main(small_run(empty, out)) == 2
    assert "no names" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert train.main(small_run(words_file, out, "--batch-size", "1")) == 2  # a value only the model refuses
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()  # a folder that was there before stays
    assert train.main(small_run(words_file, out, "--resume")) == 2
    assert (tmp_path / "runs").is_dir() and not out.exists()


def test_a_folder_in_use_is_left_as_it_was(words_file, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with RunFolder(out).locked():
        assert train.main(small_run(words_file, out)) == 2
    assert "is in use by another training run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_sample_script(words_file, tmp_path, capsys):
    assert train.main(small_run(words_file, tmp_path)) == 0
    capsys.readouterr()
    checkpoint = str(tmp_path / "checkpoint.npz")
    assert sample.main(["--checkpoint", checkpoint, "--num", "7", "--seed", "3"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == 7 and all("." not in n for n in names)
    assert sample.main(["--checkpoint", checkpoint, "--num", "7", "--seed", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == names
    assert sample.main(["--checkpoint", str(tmp_path), "--num", "7", "--seed", "3"]) == 0  # the run's folder
    assert capsys.readouterr().out.splitlines() == names
    assert sample.main(["--checkpoint", checkpoint, "--num", "30", "--mark-train"]) == 0  # data from the checkpoint
    assert "(in training data)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="2"):  # argparse's refusal
        sample.main(["--checkpoint", checkpoint, "--temperature", "0"])
    assert sample.main(["--checkpoint", str(tmp_path / "missing.npz")]) == 2


def test_sigint_to_the_process_saves_and_exits(words_file, tmp_path):
    argv = small_run(words_file, tmp_path)
    argv[argv.index("--steps") + 1] = "100000000"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "train.py"), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # the header line: training is about to start
    for _ in range(100):  # wait for the first checkpoint (step 20), so training is under way
        if (tmp_path / "checkpoint.npz").exists():
            break
        try:
            proc.wait(0.1)
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == train.INTERRUPTED, err
    assert "resume with" in err + out
    assert Run.load(tmp_path / "checkpoint.npz").step >= 20


def test_the_loss_plot_is_titled_with_the_run_it_shows(words_file, tmp_path, monkeypatch):
    titles = []
    monkeypatch.setattr(train, "plot_losses", lambda *args, title=None, **kwargs: titles.append(title))
    assert train.main(small_run(words_file, tmp_path)) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert titles == [f"hier22k ({log['params']:,} parameters), batch 8, seed {log['config']['seed']}: "
                      f"loss over {STEPS} steps"]


def test_a_loss_of_exactly_zero_still_plots(tmp_path):
    """log10(0) is minus infinity: the plot floors it rather than failing at the end of a run."""
    path = tmp_path / "loss.png"
    train.plot_losses([2.0, 1.0, 0.5, 0.0] * 50, path)
    assert path.stat().st_size > 1000


def test_parameter_count_is_the_built_models():
    for preset in PRESETS.values():
        for vocab_size in (5, 27):
            assert parameter_count(vocab_size, **preset) == count_parameters(build_model(vocab_size, **preset))


def test_an_absurd_model_size_is_refused_before_allocating(words_file, tmp_path, capsys):
    assert train.main(small_run(words_file, tmp_path, "--n-hidden", "10000000")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "parameters, more than the" in err and "Traceback" not in err


def test_best_npz_is_the_state_with_the_best_val_loss(words_file, tmp_path):
    """best.npz is saved right after the evaluation that gave the lowest val loss so far
    (final evaluation included): loaded, it gives exactly that val loss again."""
    assert train.main(small_run(words_file, tmp_path, "--lr", "0.5")) == 0
    vals = [e for e in json.loads((tmp_path / "log.json").read_text())["evals"] if e["split"] == "val"]
    best = min(vals, key=lambda e: e["loss"])
    run = Run.load(tmp_path / "best.npz")
    assert run.step == best["step"]
    assert run.evaluate(*run.dataset(split_words(load_words(words_file))[1])) == best["loss"]
    RunFolder(tmp_path).clear()  # what --overwrite does first: no best.npz of an old run survives
    assert not (tmp_path / "best.npz").exists()


def test_a_checkpoint_from_before_torchs_random_streams_is_refused_clearly(words_file, tmp_path):
    """Checkpoints used to hold NumPy's PCG64 state as JSON text; resuming one with torch's
    Mersenne Twister would silently draw other batches than the run would have."""
    from tinygrad_wave import serialization
    from tinygrad_wave.checkpoint import CheckpointError
    assert train.main(small_run(words_file, tmp_path)) == 0
    path = tmp_path / "checkpoint.npz"
    meta = serialization.load_meta(path)
    run = Run.load(path)
    assert isinstance(meta["rng_state"], dict) and meta["rng_state"]["seed"] == run.config["seed"]
    meta["rng_state"] = json.dumps({"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}})
    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files if name != "__meta__"}
    serialization.save_arrays(path, arrays, meta)
    with pytest.raises(CheckpointError, match="before train.py drew torch's random numbers"):
        Run.load(path)
