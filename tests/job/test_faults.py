"""scripts/train.py under real faults: SIGINT and SIGTERM at every phase of a run, a second
signal during the save, an --out that cannot be written, a learning rate that turns NaN,
a second run into a locked --out and the stale lock of a killed one.

Each test checks what a user would: the exit status, the one message, and that the
checkpoint on disk loads and holds the last good step. A run is paused at a named phase
by the hidden test hook (tinygrad_wave.stopping.PAUSE_VARIABLE), so that the signal lands
there for certain, not by timing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_wave import training
from tinygrad_wave.stopping import PAUSE_VARIABLE
from tinygrad_wave.training import Run

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import train  # noqa: E402

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def tiny_run(words_file, out, *extra):
    return ["--data", str(words_file), "--out", str(out), "--model", "mlp3", "--n-hidden", "16",
            "--steps", "300", "--eval-every", "100", "--num-samples", "3", "--quiet", *extra]


def start(argv, pause=None):
    """train.py in a child process; with `pause`, it stops at that phase and says so on stderr."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop(PAUSE_VARIABLE, None)
    if pause:
        env[PAUSE_VARIABLE] = pause
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_until_paused(proc):
    for line in proc.stderr:
        if line.startswith(f"[{PAUSE_VARIABLE}] paused"):
            return
    pytest.fail(f"the run ended without pausing: {proc.communicate()}")


def finish(proc):
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, out, err


def errors(err):
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if "error:" in line]


# (phase to signal in, the step the checkpoint must hold)
PHASES = [("training:150", 200), ("evaluation", 100), ("saving", 100), ("final evaluation", 300), ("sampling", 300)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase, step", PHASES, ids=[p for p, _ in PHASES])
def test_a_signal_at_any_phase_saves_the_run(words_file, tmp_path, phase, step, signum):
    extra = ("--eval-every", "0") if phase.startswith("training") else ()  # its checkpoint is the signal's
    proc = start(tiny_run(words_file, tmp_path, *extra), pause=phase)
    wait_until_paused(proc)
    proc.send_signal(signum)
    status, out, err = finish(proc)
    assert status == EXIT_STATUS[signum], err
    assert f"stopped by {signal.Signals(signum).name} at step {step}: checkpoint saved" in out
    assert errors(err) == []
    assert Run.load(tmp_path / "checkpoint.npz").step == step
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["step"] == step and len(log["losses"]) == step and log["final"] is None


def test_a_run_stopped_in_its_final_evaluation_resumes_to_the_end(words_file, tmp_path):
    proc = start(tiny_run(words_file, tmp_path), pause="final evaluation")
    wait_until_paused(proc)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 143
    status, out, err = finish(start(tiny_run(words_file, tmp_path, "--resume")))
    assert status == 0, err
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["step"] == 300 and set(log["final"]) == {"train", "val", "test"} and len(log["samples"]) == 3


def test_a_signal_while_loading_exits_with_nothing_to_save(words_file, tmp_path):
    proc = start(tiny_run(words_file, tmp_path), pause="loading")
    wait_until_paused(proc)
    proc.send_signal(signal.SIGINT)
    status, _, err = finish(proc)
    assert status == 130 and "nothing to save" in err and "Traceback" not in err
    assert not (tmp_path / "checkpoint.npz").exists()


def test_a_second_signal_during_the_save_does_not_corrupt_it(words_file, tmp_path):
    proc = start(tiny_run(words_file, tmp_path), pause="saving")
    wait_until_paused(proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)  # the impatient second one, while the first is being handled
    status, out, err = finish(proc)
    assert status == 130, err  # the first signal's status
    assert Run.load(tmp_path / "checkpoint.npz").step == 100
    assert Run.load(tmp_path / "best.npz").step == 100  # the val evaluation at step 100 was the first: the best
    files = sorted(p.name for p in tmp_path.iterdir() if not p.match(train.TENSORBOARD_EVENTS))
    assert files == ["best.npz", "checkpoint.npz", "log.json", "loss.png"]  # no debris
    assert len(list(tmp_path.glob(train.TENSORBOARD_EVENTS))) == 1  # and one TensorBoard log


def test_a_nan_learning_rate_stops_the_run_and_keeps_the_last_good_checkpoint(words_file, tmp_path, monkeypatch,
                                                                                capsys):
    """The schedule turns the learning rate into NaN at step 151, for real: the weights turn
    NaN, and the loss of step 152 is the first that is not finite."""
    schedule = training.learning_rate
    monkeypatch.setattr(training, "learning_rate",
                        lambda config, step: float("nan") if step >= 150 else schedule(config, step))
    assert train.main(tiny_run(words_file, tmp_path)) == train.DIVERGED
    message = errors(capsys.readouterr().err)
    assert len(message) == 1
    assert "the loss became nan at step 152" in message[0] and "lower" in message[0]
    assert "keeps step 100" in message[0]
    assert Run.load(tmp_path / "checkpoint.npz").step == 100  # loads: finite, never overwritten
    log = json.loads((tmp_path / "log.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert log["step"] == 151 and len(log["losses"]) == 151 and "step 152" in log["diverged"]
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_a_huge_learning_rate_diverges_with_one_message(words_file, tmp_path):
    status, _, err = finish(start(tiny_run(words_file, tmp_path, "--lr", "1e30")))
    assert status == train.DIVERGED
    [message] = errors(err)
    assert "became" in message and "--lr 1e+30" in message and "lower" in message
    log = json.loads((tmp_path / "log.json").read_text(), parse_constant=pytest.fail)
    assert len(log["losses"]) == log["step"] < 300
    if (tmp_path / "checkpoint.npz").exists():  # an evaluation before the divergence
        Run.load(tmp_path / "checkpoint.npz")


@pytest.mark.parametrize("lr", ["nan", "inf", "-0.1", "0", "1e-320"])
def test_the_learning_rate_must_be_positive_and_finite(words_file, tmp_path, lr, capsys):
    with pytest.raises(SystemExit) as exit:
        train.main(tiny_run(words_file, tmp_path, f"--lr={lr}"))
    assert exit.value.code == 2
    [message] = errors(capsys.readouterr().err)
    assert "--lr: must be a positive finite number" in message


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder no file can be created in: read-only, or immutable (chattr +i) for root, whom
    permissions do not stop."""
    folder = tmp_path / "locked-down"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root, and chattr +i is not available here to make a folder unwritable")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_out_is_refused_before_any_work(words_file, unwritable_dir, capsys):
    for out in (unwritable_dir, unwritable_dir / "run"):
        assert train.main(tiny_run(words_file, out)) == 2
        captured = capsys.readouterr()
        [message] = errors(captured.err)
        assert f"cannot write to --out {out}" in message
        assert "parameters" not in captured.out  # refused before the data was loaded


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_an_out_that_is_a_file_is_refused(words_file, tmp_path, kind, capsys):
    (tmp_path / "f").write_text("")
    out = tmp_path / "f" if kind == "a file" else tmp_path / "f" / "run"
    assert train.main(tiny_run(words_file, out)) == 2
    [message] = errors(capsys.readouterr().err)
    assert str(out) in message


def test_a_second_run_into_a_locked_out_is_refused(words_file, tmp_path):
    first = start(tiny_run(words_file, tmp_path), pause="training:150")
    wait_until_paused(first)
    status, out, err = finish(start(tiny_run(words_file, tmp_path, "--resume")))
    assert status == 2
    [message] = errors(err)
    assert f"in use by another training run (pid {first.pid})" in message
    first.send_signal(signal.SIGINT)  # the first run was not disturbed
    assert finish(first)[0] == 130
    assert Run.load(tmp_path / "checkpoint.npz").step == 200


def test_the_stale_lock_of_a_killed_run_is_taken_over(words_file, tmp_path):
    killed = start(tiny_run(words_file, tmp_path), pause="training:150")
    wait_until_paused(killed)
    killed.kill()  # SIGKILL: no handler runs, the lock file stays behind with a dead pid
    killed.wait()
    assert (tmp_path / ".lock").read_text().strip() == str(killed.pid)
    status, out, err = finish(start(tiny_run(words_file, tmp_path, "--resume")))
    assert status == 0, err
    assert Run.load(tmp_path / "checkpoint.npz").step == 300  # resumed from the checkpoint at step 100
    assert not (tmp_path / ".lock").exists()


def test_an_out_holding_a_run_needs_resume_or_overwrite(words_file, tmp_path, capsys):
    assert train.main(tiny_run(words_file, tmp_path)) == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    assert train.main(tiny_run(words_file, tmp_path, "--steps", "200")) == 2
    [message] = errors(capsys.readouterr().err)
    assert "already holds a run" in message and "--resume" in message and "--overwrite" in message
    assert (tmp_path / "checkpoint.npz").read_bytes() == before  # untouched
    assert train.main(tiny_run(words_file, tmp_path, "--steps", "200", "--overwrite")) == 0
    assert Run.load(tmp_path / "checkpoint.npz").step == 200


def test_resume_refuses_flags_that_contradict_the_run(words_file, tmp_path, capsys):
    assert train.main(tiny_run(words_file, tmp_path, "--steps", "100")) == 0
    capsys.readouterr()
    assert train.main(tiny_run(words_file, tmp_path, "--resume", "--lr", "0.5", "--batch-size", "64",
                               "--dtype", "float64")) == 2
    [message] = errors(capsys.readouterr().err)
    for flag in ("--lr 0.5 (the run has 0.1)", "--batch-size 64 (the run has 32)",
                 "--dtype float64 (the run has float32)"):
        assert flag in message
    assert Run.load(tmp_path / "checkpoint.npz").step == 100


def test_resume_keeps_the_eval_schedule_and_applies_a_new_one(words_file, tmp_path):
    out = ["--out", str(tmp_path), "--quiet", "--num-samples", "1"]
    assert train.main(tiny_run(words_file, tmp_path, "--eval-every", "40", "--steps", "100")) == 0
    assert train.main(out + ["--resume", "--steps", "200"]) == 0  # no --eval-every: the checkpoint's 40
    evals = json.loads((tmp_path / "log.json").read_text())["evals"]
    assert [e["step"] for e in evals if e["split"] == "val"] == [40, 80, 100, 120, 160, 200]
    assert train.main(out + ["--resume", "--steps", "300", "--eval-every", "50"]) == 0
    evals = json.loads((tmp_path / "log.json").read_text())["evals"]
    assert [e["step"] for e in evals if e["split"] == "val" and e["step"] > 200] == [250, 300]
    assert Run.load(tmp_path / "checkpoint.npz").config["eval_every"] == 50
