"""scripts/sweep.py: a search space is refused in one line before anything starts, and on Ray
(skipped where the sweep extra is not installed) a two-trial sweep on two embedded cores, a
two-node cluster with a trial on each node, a worker killed mid-trial whose trial still ends
with an unbroken run's losses, and a sweep stopped with Ctrl-C and resumed.

The models are tiny (a few hundred parameters) on a small names file, so that each Ray test
costs mostly Ray's own start."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import sample  # noqa: E402
import sweep  # noqa: E402
import train  # noqa: E402
from test_scripts import refused  # noqa: E402

ray_only = pytest.mark.skipif(not sweep.ray_installed(), reason="the sweep extra (ray[tune]) is not installed")


def tiny(words_file, steps):
    """train.py flags of a 719-parameter model that evaluates every 100 steps."""
    return ["--data", str(words_file), "--model", "hier22k", "--n-embd", "4", "--n-hidden", "8",
            "--steps", str(steps), "--eval-every", "100", "--num-samples", "2"]


# --- the space, checked before anything starts ---------------------------------------------------

def test_a_space_of_lists_ranges_and_log_ranges():
    fixed, searched = sweep.parse_space(["--lr", "0.01:0.1:log", "--n-hidden", "8:16", "--model", "hier22k,mlp3",
                                         "--steps", "10", "--no-jit"], grid=False)
    assert fixed == ["--steps", "10", "--no-jit"]
    assert [(s.flag, s.values, s.low, s.high, s.log) for s in searched] == [
        ("--lr", None, 0.01, 0.1, True), ("--n-hidden", None, 8, 16, False), ("--model", ["hier22k", "mlp3"], None, None, False)]
    assert sweep.flags_of({"lr": 0.05, "n_hidden": 9, "model": "mlp3"}, searched) == [
        "--lr", "0.05", "--n-hidden", "9", "--model", "mlp3"]


@ray_only
def test_integer_ranges_include_both_ends():
    domain = sweep.Searched("--n-hidden", low=8, high=9).tune_domain(grid=False)
    assert {domain.sample() for _ in range(50)} == {8, 9}


def test_a_refused_space_is_one_error_line(words_file, tmp_path, capsys):
    for argv, expected in [(["--lrx", "1,2"], "--lrx is not a flag of train.py"),
                           (["--lr", "0.1:0.01"], "the range is empty"),
                           (["--momentum", "0:0.9:log"], "a log range cannot reach zero"),
                           (["--lr", "0:1"], "--lr 0: must be a positive finite number"),
                           (["--lr", "0.01:0.1", "--search", "grid"], "grid search takes lists only"),
                           (["--model", "hier22k:mlp3"], "takes a list of values, not a range"),
                           (["--threads", "2", "--lr", "1,2"], "--threads is set by the sweep"),
                           (["--dropout", "0.1,0.2"], "dropout applies to the WaveNet presets only"),
                           (["--lr", "0.1"], "nothing to search"),
                           (["--eval-every", "0", "--lr", "0.1,0.2"], "--eval-every must be at least 1")]:
        assert expected in refused(sweep.main, ["--out", tmp_path / "sweep", "--data", words_file, *argv], capsys)
    for argv, expected in [(["--resume"], "there is no sweep in"),
                           (["--resume", "--lr", "1,2"], "--resume carries on the sweep with its own settings"),
                           (["--address", "auto", "--cpus", "2", "--lr", "1,2"], "a cluster (--address) has its own")]:
        assert expected in refused(sweep.main, ["--out", tmp_path / "sweep", *argv], capsys)
    assert not (tmp_path / "sweep").exists()  # refused before anything was written


def test_without_ray_the_sweep_says_how_to_install_it(words_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "ray_installed", lambda: False)
    assert 'pip install -e ".[sweep]"' in refused(sweep.main, ["--out", tmp_path, "--data", words_file, "--lr", "1,2"], capsys)


@ray_only
def test_without_optuna_its_search_says_how_to_install_it(words_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "find_spec", lambda name: None if name == "optuna" else object())
    assert "pip install optuna" in refused(sweep.main, ["--out", tmp_path / "sweep", "--data", words_file,
                                                        "--search", "optuna", "--lr", "1,2"], capsys)
    assert not (tmp_path / "sweep").exists()


# --- on Ray ------------------------------------------------------------------------------------------

def read_trials(out):
    return {row["id"]: row for row in json.loads((out / "trials.json").read_text())}


@ray_only
def test_two_trials_on_two_embedded_cores(words_file, tmp_path, capsys):
    """Two trials, and a third whose learning rate makes it diverge: an outcome, not an error."""
    out = tmp_path / "sweep"
    assert sweep.main(["--out", str(out), "--cpus", "2", "--search", "grid", "--no-early-stop",
                       *tiny(words_file, 300), "--lr", "0.05,0.3,1e9"]) == 0
    results = (out / "results.md").read_text()
    assert results in capsys.readouterr().out  # printed, after Tune's progress tables
    trials = read_trials(out)
    diverged = next(trial for trial, row in trials.items() if row["params"]["lr"] == 1e9)
    assert trials[diverged]["val_loss"] == float("inf")
    assert json.loads((out / "trials" / diverged / "log.json").read_text())["diverged"]
    table = {line.split("|")[1].strip(): line.split("|")[3:5] for line in results.splitlines() if line.startswith("| ")}
    assert [table[trial][0].strip() for trial in table if trial in trials] == sorted(  # best first, diverged last
        f"{row['val_loss']:.4f}" for row in trials.values() if row["val_loss"] < 3) + ["inf"]
    assert table[diverged][1].strip().startswith("diverged at step")
    del trials[diverged]
    for trial in trials:  # each an ordinary run folder, finished, that sample.py reads
        log = json.loads((out / "trials" / trial / "log.json").read_text())
        assert log["step"] == 300 and log["final"]["val"] == trials[trial]["val_loss"]
        assert (out / "trials" / trial / "loss.png").is_file()
        assert sample.main(["--checkpoint", str(out / "trials" / trial / "checkpoint.npz"), "--num", "2"]) == 0
    assert (out / "val_loss.png").is_file()
    # the best trial's command trains the same run again
    command = next(line.split() for line in results.splitlines() if line.strip().startswith("python scripts/train.py"))
    assert command[-2:] == ["--out", str(out / "best")]
    assert train.main(command[2:]) == 0
    best = min(trials.values(), key=lambda row: row["val_loss"])
    assert json.loads((out / "best" / "log.json").read_text())["final"]["val"] == best["val_loss"]


@ray_only
@pytest.mark.skipif(sweep.find_spec("optuna") is None, reason="optuna is not installed")
def test_the_optuna_search_is_told_every_trials_val_loss(words_file, tmp_path):
    """--search optuna: Optuna's study, as Tune saved it, holds every trial with the values it
    ran and the val loss it ended on (a trial ASHA stopped, with its last): what TPE learns from."""
    from ray.tune.search.optuna import OptunaSearch
    out = tmp_path / "sweep"
    assert sweep.main(["--out", str(out), "--cpus", "2", "--search", "optuna", "--trials", "4", "--grace-steps", "100",
                       *tiny(words_file, 300), "--lr", "0.001:1:log", "--batch-size", "16,32"]) == 0
    trials = read_trials(out)
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(out / "tune"))
    told = sorted((t.params["lr"], t.params["batch_size"], t.value) for t in searcher._ot_study.trials)
    assert told == sorted((row["params"]["lr"], row["params"]["batch_size"], row["val_loss"]) for row in trials.values())
    assert len(told) == 4 and all(0.001 <= lr <= 1 for lr, _, _ in told)
    assert "Best: trial" in (out / "results.md").read_text()


@ray_only
def test_a_two_node_cluster_runs_trials_on_both_nodes(words_file, tmp_path):
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "sweep"
        assert sweep.main(["--out", str(out), "--address", cluster.address, "--search", "grid", "--no-early-stop",
                           *tiny(words_file, 300), "--lr", "0.05,0.3"]) == 0
        nodes = {node.node_id for node in cluster.list_all_nodes()}
        assert len(nodes) == 2 and {row["node"] for row in read_trials(out).values()} == nodes
    finally:
        cluster.shutdown()


def start_sweep(out, argv):
    """sweep.py in its own process (a test sends it signals), its output in out/../sweep.log."""
    with open(out.parent / "sweep.log", "ab") as log:  # the process writes to its own copy of the file
        return subprocess.Popen([sys.executable, str(SCRIPTS / "sweep.py"), "--out", str(out), *argv],
                                stdout=log, stderr=subprocess.STDOUT)


def wait_for_a_checkpoint(out, process, step=1, timeout=120):
    """The folder of the first trial that saved a checkpoint at `step` or later, while the sweep still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, (out.parent / "sweep.log").read_text()
        saved = [path.parent for path in sorted((out / "trials").glob("*/checkpoint.npz"))
                 if sweep.RunFolder(path.parent).saved_step() >= step]
        if saved:
            return saved[0]
        time.sleep(0.05)
    raise AssertionError(f"no trial saved a checkpoint at step {step} or later in {timeout} s")


def unbroken_losses(words_file, tmp_path, trial_argv):
    """The per-step losses and final losses of the same run, never stopped."""
    out = tmp_path / "unbroken"
    assert train.main([*trial_argv, "--out", str(out), "--threads", "1", "--quiet"]) == 0
    log = json.loads((out / "log.json").read_text())
    return log["losses"], log["final"]


@ray_only
def test_a_worker_killed_mid_trial_resumes_to_an_unbroken_runs_losses(words_file, tmp_path):
    """On one core the trials run one after the other. The first is killed mid-run, past ASHA's
    first rung (step 500), and resumed; the second, at a learning rate far too low, runs in the
    meantime, is behind the first at that rung, and ASHA stops it."""
    out, argv = tmp_path / "sweep", tiny(words_file, 6000)
    process = start_sweep(out, ["--cpus", "1", "--search", "grid", "--grace-steps", "500", *argv, "--lr", "0.1,0.0001"])
    folder = wait_for_a_checkpoint(out, process, step=600)
    pid = int((folder / ".lock").read_text())
    assert sweep.RunFolder(folder).saved_step() < 6000  # killed mid-trial
    os.kill(pid, signal.SIGKILL)
    assert process.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()
    trials = read_trials(out)
    killed = trials.pop(folder.name)
    assert killed["failures"] == 1
    log = json.loads((folder / "log.json").read_text())
    assert (log["losses"], log["final"]) == unbroken_losses(words_file, tmp_path, [*argv, "--lr", str(killed["params"]["lr"])])
    (stopped_id, stopped), = trials.items()  # stopped by ASHA, its run folder completed from its checkpoint
    assert stopped["step"] == 500 and stopped["val_loss"] > killed["val_loss"]
    stopped_folder = out / "trials" / stopped_id
    assert json.loads((stopped_folder / "log.json").read_text())["step"] == stopped["step"]
    assert (stopped_folder / "loss.png").is_file()
    assert sample.main(["--checkpoint", str(stopped_folder / "checkpoint.npz"), "--num", "2"]) == 0
    assert f"stopped at step {stopped['step']:,}" in (out / "results.md").read_text()


@ray_only
@pytest.mark.parametrize("search", ["grid", "optuna"])
def test_a_sweep_stopped_with_ctrl_c_carries_on_with_resume(words_file, tmp_path, search):
    """Optuna's too: Tune saves the searcher's study beside the trials, and --resume restores both."""
    if search == "optuna" and sweep.find_spec("optuna") is None:
        pytest.skip("optuna is not installed")
    out, argv = tmp_path / "sweep", tiny(words_file, 3000)
    space = ["--lr", "0.05,0.1"] if search == "grid" else ["--trials", "2", "--lr", "0.05:0.1"]
    process = start_sweep(out, ["--cpus", "2", "--search", search, "--no-early-stop", *argv, *space])
    folder = wait_for_a_checkpoint(out, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == sweep.INTERRUPTED
    stopped_at = sweep.RunFolder(folder).saved_step()
    assert stopped_at < 3000 and not (folder / "log.json").exists()
    assert "--resume" in (tmp_path / "sweep.log").read_text()
    resumed = start_sweep(out, ["--resume"])
    assert resumed.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()
    trials = read_trials(out)
    assert len(trials) == 2  # the two the sweep asked for, not new ones drawn after the resume
    assert folder.name in trials and all(json.loads((out / "trials" / t / "log.json").read_text())["step"] == 3000
                                         for t in trials)
    assert f"from step {stopped_at:,}" in (tmp_path / "sweep.log").read_text()  # carried on, not started again
