#!/usr/bin/env python
"""Search train.py's settings with Ray Tune, on this machine's cores or on a cluster.

    python scripts/sweep.py --model wavenet --lr 0.01:0.2:log --dropout 0.1,0.2,0.3 --trials 12
    python scripts/sweep.py --model hier22k --steps 20000 --lr 0.05,0.1,0.2 --n-hidden 64,96 --search grid
    python scripts/sweep.py --resume --out runs/sweep        # carry on after Ctrl-C
    python scripts/sweep.py --address auto ...               # on a cluster started with `ray start`

Any train.py flag may be searched. Its value is a list (0.1,0.2,0.4), a range (0.1:0.5, uniform;
for an integer flag, integers with both ends included) or a log range (0.001:0.1:log, uniform in
log space). Flags with a single value are passed to every trial as they are. Random search draws
--trials configurations; grid search (lists only) runs every combination, --trials times over;
--search optuna draws each new trial from what the finished ones reported (Optuna's TPE sampler,
through Tune's OptunaSearch: pip install optuna).

Every trial is an ordinary train.py run in OUT/trials/ID (checkpoint.npz, best.npz, log.json,
loss.png), which scripts/sample.py and train.py --resume accept. Each reports its val loss every
--eval-every steps, and Tune's ASHA stops the trials that are plainly behind the others at the same
step (--no-early-stop runs them all to the end). A trial whose worker dies is started again and
resumes from its last checkpoint, ending with the losses of an unbroken run; a sweep stopped with
Ctrl-C carries on with --resume. At the end: the trials sorted by val loss (also in
OUT/results.md), the best trial's train.py command, and OUT/val_loss.png, the val loss against each
searched value. `tensorboard --logdir OUT/trials` shows every trial's curves (train.py's events).

On a cluster every machine needs the project at the same path as this one, and OUT on a file
system they all share (the trials write their run folders there).
"""
import argparse
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass
from functools import partial
from importlib.util import find_spec
from pathlib import Path

import train
from on_ray import MISSING, ray_installed, start_ray

from tinygrad_wave.cli import fail, positive_int
from tinygrad_wave.data import DataError, build_vocab, ensure_names, load_words
from tinygrad_wave.runfolder import FolderError, RunFolder, prepare_folder
from tinygrad_wave.serialization import atomic_write
from tinygrad_wave.training import Run, check_config

INTERRUPTED = 130  # the exit status after Ctrl-C, as train.py's
# the sweep's settings that OUT/sweep.json keeps for --resume, beside train.py's flags
SAVED_SETTINGS = ("search", "trials", "no_early_stop", "grace_steps", "cpus_per_trial", "max_failures")
# train.py flags that the sweep sets for every trial itself (--out and --resume are the sweep's own)
SET_BY_SWEEP = {"--overwrite": "every trial has a new run folder",
                "--threads": "each trial's BLAS threads are its --cpus-per-trial",
                "--quiet": "trials never draw a progress bar"}
UNFINISHED = ("PENDING", "RUNNING", "PAUSED")  # Tune's trial states that a Ctrl-C leaves behind


class SpaceError(ValueError):
    """A search space that the sweep refuses; the message says which flag and why."""


@dataclass
class Searched:
    """One searched flag: `values` for a list, or low..high for a range (log: in log space)."""
    flag: str
    values: list = None
    low: float = None
    high: float = None
    log: bool = False

    @property
    def key(self):
        return self.flag[2:].replace("-", "_")

    def describe(self):
        if self.values is not None:
            return f"{self.flag} in {{{', '.join(map(str, self.values))}}}"
        return f"{self.flag} from {self.low} to {self.high}" + (" (log scale)" if self.log else "")

    def tune_domain(self, grid):
        """Ray Tune's search domain of this flag: every value (grid), or a random draw."""
        from ray import tune
        if self.values is not None:
            return tune.grid_search(self.values) if grid else tune.choice(self.values)
        if isinstance(self.low, int):  # tune's integer domains exclude their upper end: high + 1
            return (tune.lograndint if self.log else tune.randint)(self.low, self.high + 1)
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)

    def corners(self):
        """The values whose settings are checked before the sweep starts: each listed one, or both ends."""
        return self.values if self.values is not None else [self.low, self.high]


def parse_args(argv=None):
    """(sweep's own flags, train.py's flags as given)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/sweep", help="the sweep's folder (default %(default)s)")
    p.add_argument("--search", choices=("random", "grid", "optuna"), default="random",
                   help="random: --trials draws from the space; grid: every combination of the lists; "
                        "optuna: --trials draws, each from what the trials before it reported "
                        "(Optuna's TPE; pip install optuna) (default %(default)s)")
    p.add_argument("--trials", type=positive_int,
                   help="configurations drawn (random search, default 8), or runs of the whole grid (default 1)")
    p.add_argument("--no-early-stop", action="store_true",
                   help="run every trial to its last step (default: ASHA stops trials behind the others)")
    p.add_argument("--grace-steps", type=positive_int,
                   help="steps every trial runs before ASHA may stop it (default: a quarter of --steps)")
    p.add_argument("--cpus-per-trial", type=positive_int, default=1,
                   help="cores each trial holds, and its BLAS threads (default %(default)s)")
    p.add_argument("--max-failures", type=positive_int, default=3,
                   help="times a trial whose worker died is started again from its checkpoint (default %(default)s)")
    p.add_argument("--address", help="a running Ray cluster (`auto` on one of its machines, or HOST:PORT); "
                                     "default: Ray started on this machine for the sweep alone")
    p.add_argument("--cpus", type=positive_int,
                   help="cores of the Ray started on this machine (default: all); not with --address")
    p.add_argument("--resume", action="store_true",
                   help="carry on the sweep in --out with its own settings (after Ctrl-C or a crash)")
    return p.parse_known_args(argv)


# --- the search space -----------------------------------------------------------------------------

def train_flags():
    """train.py's flags by option string, e.g. "--lr" -> its argparse action."""
    return {option: action for action in train.parser()._actions for option in action.option_strings}


def tokens_of(argv):
    """[(flag, value or None)] from train.py flags given as `--flag value`, `--flag=value` or `--flag`."""
    actions, pairs, rest = train_flags(), [], list(argv)
    while rest:
        token = rest.pop(0)
        flag, equals, value = token.partition("=")
        if flag not in actions:
            raise SpaceError(f"{flag} is not a flag of train.py (python scripts/train.py --help lists them)")
        if flag in SET_BY_SWEEP:
            raise SpaceError(f"{flag} is set by the sweep: {SET_BY_SWEEP[flag]}")
        if actions[flag].nargs == 0:  # a switch, such as --no-jit
            if equals:
                raise SpaceError(f"{flag} takes no value")
            value = None
        elif not equals:
            if not rest:
                raise SpaceError(f"{flag} needs a value")
            value = rest.pop(0)
        if any(flag == seen for seen, _ in pairs):
            raise SpaceError(f"{flag} is given twice")
        pairs.append((flag, value))
    return pairs


def converted(flag, text, action):
    """One value, as train.py's own flag type and choices take it."""
    try:
        value = action.type(text) if action.type else text
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise SpaceError(f"{flag} {text}: {e}") from None
    if action.choices and value not in action.choices:
        raise SpaceError(f"{flag} {text}: not one of {', '.join(map(str, action.choices))}")
    return value


def searched_flag(flag, text, action, grid):
    """The Searched a value with ',' or ':' stands for, checked value by value."""
    if "," in text:
        values = [converted(flag, item, action) for item in text.split(",")]
        if len(set(values)) < len(values):
            raise SpaceError(f"{flag} {text}: a value is listed twice")
        return Searched(flag, values=values)
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise SpaceError(f"{flag} {text}: a range is LOW:HIGH or LOW:HIGH:log")
    if grid:
        raise SpaceError(f"{flag} {text}: grid search takes lists only (e.g. {flag} 0.01,0.03,0.1); "
                         "ranges are for --search random")
    low, high = (converted(flag, part, action) for part in parts[:2])
    if not isinstance(low, (int, float)):
        raise SpaceError(f"{flag} {text}: {flag} takes a list of values, not a range")
    if low >= high:
        raise SpaceError(f"{flag} {text}: the range is empty (LOW must be below HIGH)")
    if len(parts) == 3 and low <= 0:
        raise SpaceError(f"{flag} {text}: a log range cannot reach zero or below")
    return Searched(flag, low=low, high=high, log=len(parts) == 3)


def parse_space(argv, grid):
    """(fixed, searched): train.py's arguments for every trial, and the Searched flags."""
    actions, fixed, searched = train_flags(), [], []
    for flag, value in tokens_of(argv):
        if value is None:
            fixed.append(flag)
        elif "," in value or ":" in value:
            searched.append(searched_flag(flag, value, actions[flag], grid))
        else:
            converted(flag, value, actions[flag])
            fixed += [flag, str(Path(value).resolve()) if flag == "--data" else value]
    if not searched:
        raise SpaceError("nothing to search: give at least one flag a list (0.1,0.2), a range (0.1:0.5) "
                         "or a log range (0.001:0.1:log)")
    return fixed, searched


def flags_of(params, searched):
    """train.py's arguments for one trial's values of the searched flags."""
    return [token for s in searched for token in (s.flag, str(params[s.key]))]


def trial_configs(fixed, searched):
    """train.py's config for each corner of the space: each searched value (or range end),
    the other flags at their first. ValueError, naming the values, for one a Run refuses."""
    first = {s.key: s.corners()[0] for s in searched}
    configs = []
    for s in searched:
        for value in s.corners():
            argv = fixed + flags_of({**first, s.key: value}, searched)
            flags = train.parse_args(argv)
            config = train.config_from(flags)
            try:
                check_config(config, build_vocab(load_words(ensure_names(flags.data))))
            except ValueError as e:
                raise SpaceError(f"{' '.join(argv)}: {e}") from None
            if not config["eval_every"]:
                raise SpaceError("a sweep compares val losses during training: --eval-every must be at least 1")
            configs.append(config)
    return configs


# --- one trial, in a Ray worker ---------------------------------------------------------------------

def run_trial(params, fixed, searched, trials, threads):
    """train.py's main job on one point of the space, in OUT/trials/ID, reporting each val loss
    to Tune. A trial started again (its worker died, or the sweep is resumed) resumes its run."""
    import ray
    from ray import tune
    folder = Path(trials) / tune.get_context().get_trial_id()
    node = ray.get_runtime_context().get_node_id()
    argv = fixed + flags_of(params, searched) + ["--out", str(folder), "--threads", str(threads), "--quiet"]
    if (folder / "checkpoint.npz").is_file():
        argv.append("--resume")
    # Tune ends a trial that ASHA stops inside this report (SystemExit): the run's checkpoint
    # was saved just before, and report_results writes its log.json and loss.png
    status = train.main(argv, on_eval=lambda run, val: tune.report(dict(val_loss=val, step=run.step, node=node)))
    log = RunFolder(folder).read_log()
    if status == 0:
        tune.report(dict(val_loss=log["final"]["val"], step=log["step"], node=node))
    elif status == train.DIVERGED:  # not an error to retry: the same run diverges again
        tune.report(dict(val_loss=math.inf, step=log["step"], node=node))
    else:
        raise RuntimeError(f"train.py {shlex.join(argv)} ended with status {status}")


# --- running on Ray ---------------------------------------------------------------------------------

def trainable_of(args, fixed, searched, out):
    """run_trial with the sweep's settings, holding --cpus-per-trial cores."""
    from ray import tune
    return tune.with_resources(
        partial(run_trial, fixed=fixed, searched=searched, trials=str(out / "trials"), threads=args.cpus_per_trial),
        {"cpu": args.cpus_per_trial})


def searcher_of(args):
    """Who picks each trial's values: Tune's own variant generator (random or grid, the default:
    None), or Optuna's TPE, which fits the val losses reported so far (a trial that ASHA stopped
    counts with its last one) and draws where they were low."""
    if args.search != "optuna":
        return None
    from ray.tune.search.optuna import OptunaSearch
    return OptunaSearch(seed=0)  # the first draws, before anything is learnt, are the same each sweep


def make_tuner(args, fixed, searched, configs, out):
    """A new sweep: ASHA stops trials on their val loss at equal steps (the most any trial runs: max_t)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    steps = max(config["steps"] for config in configs)
    scheduler = FIFOScheduler() if args.no_early_stop else ASHAScheduler(
        time_attr="step", max_t=steps, grace_period=args.grace_steps or max(1, steps // 4))
    return tune.Tuner(
        trainable_of(args, fixed, searched, out),
        param_space={s.key: s.tune_domain(args.search == "grid") for s in searched},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=args.trials, scheduler=scheduler,
                                    search_alg=searcher_of(args)),
        run_config=tune.RunConfig(name="tune", storage_path=str(out),
                                  failure_config=tune.FailureConfig(max_failures=args.max_failures)))


# --- what the user sees at the end --------------------------------------------------------------------

def trial_rows(out):
    """Every trial's id, values, state, failures and last report, from the state Tune saved last
    (the trials Tune cancels after a Ctrl-C are saved as they stood), also written to trials.json."""
    import logging
    from ray import tune
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # not its warning about the trials that never ran
    rows = [dict(id=t.trial_id, params=t.config, state=t.status, failures=t.num_failures,
                 val_loss=t.last_result.get("val_loss"), step=t.last_result.get("step"), node=t.last_result.get("node"))
            for t in tune.ExperimentAnalysis(str(out / "tune")).trials]
    atomic_write(out / "trials.json", lambda f: f.write(json.dumps(rows, indent=1).encode()))
    return rows


def with_outcomes(rows, out):
    """The rows with their run folders' outcome, sorted by val loss. A trial that ASHA stopped
    gets its log.json and loss.png here, from its checkpoint."""
    for row in rows:
        folder = RunFolder(out / "trials" / row["id"])
        if row["state"] == "TERMINATED" and folder.checkpoint.is_file() and not folder.log.is_file():
            run = Run.load(folder.checkpoint)
            train.write_outputs(run, folder)
        log = folder.read_log() or {}
        row["outcome"] = ("finished" if log.get("final") else f"diverged at step {log['step']:,}" if log.get("diverged")
                          else f"failed ({row['failures']} times)" if row["state"] == "ERROR"
                          else f"stopped at step {row['step']:,}")
    return sorted(rows, key=lambda row: math.inf if row["val_loss"] is None else row["val_loss"])


def results_table(rows, searched):
    lines = ["| trial | " + " | ".join(s.flag for s in searched) + " | val loss | outcome |",
             "|---|" + "---:|" * len(searched) + "---:|---|"]
    for row in rows:
        val = "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
        lines.append(f"| {row['id']} | " + " | ".join(f"{row['params'][s.key]:.4g}" if isinstance(row["params"][s.key], float)
                                                     else str(row["params"][s.key]) for s in searched)
                     + f" | {val} | {row['outcome']} |")
    return lines


def plot_val_losses(rows, searched, path):
    """val_loss.png: one panel per searched flag, each trial's last val loss against its value."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4 * len(searched), 3.5))
    for ax, s in zip(fig.subplots(1, len(searched), squeeze=False)[0], searched):
        for finished, marker in ((True, "o"), (False, "x")):
            points = [(row["params"][s.key], row["val_loss"]) for row in rows if row["val_loss"] is not None
                      and math.isfinite(row["val_loss"]) and (row["outcome"] == "finished") == finished]
            if points:
                xs, ys = zip(*points)
                if s.values is not None and not isinstance(s.values[0], (int, float)):
                    xs = [s.values.index(x) for x in xs]  # a list of names (--model): one column each
                ax.plot(xs, ys, marker, linestyle="", label="finished" if finished else "stopped early")
        if s.values is not None and not isinstance(s.values[0], (int, float)):
            ax.set_xticks(range(len(s.values)), [str(v) for v in s.values])
        if s.log:
            ax.set_xscale("log")
        ax.set(xlabel=s.flag, ylabel="val loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def report_results(rows, out, fixed, searched):
    """Print and save the trials sorted by val loss, the best one's command, the figure."""
    rows = with_outcomes(rows, out)
    table = results_table(rows, searched)
    finished = [row for row in rows if row["outcome"] == "finished"]
    lines = ["Searched: " + "; ".join(s.describe() for s in searched), "", *table, ""]
    if finished:
        best = finished[0]
        command = shlex.join(["python", "scripts/train.py", *fixed, *flags_of(best["params"], searched),
                              "--out", str(out / "best")])
        lines += [f"Best: trial {best['id']}, val {best['val_loss']:.4f} (its run: {out / 'trials' / best['id']}). "
                  f"To train it again:", "", f"    {command}", ""]
    plot_val_losses(rows, searched, out / "val_loss.png")
    (out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"saved in {out}{os.sep}: results.md, val_loss.png, trials/ (one train.py run each); "
          f"tensorboard --logdir {out / 'trials'}")


# --- the command ------------------------------------------------------------------------------------

def settings_of(args, train_argv, saved_path):
    """train.py's flags for the sweep, as given; for --resume, the sweep's own, with its
    settings (SAVED_SETTINGS) put back into args, as saved_path (OUT/sweep.json) holds them."""
    if not args.resume:
        if saved_path.is_file():
            raise SpaceError(f"{saved_path.parent} already holds a sweep: pass --resume to carry it on, "
                             "or choose another --out")
        args.trials = args.trials or (1 if args.search == "grid" else 8)
        return train_argv
    if train_argv:
        raise SpaceError(f"--resume carries on the sweep with its own settings: drop {' '.join(train_argv)}")
    if not saved_path.is_file():
        raise SpaceError(f"--resume: there is no sweep in {saved_path.parent} (no sweep.json)")
    saved = json.loads(saved_path.read_text())
    for key in SAVED_SETTINGS:
        setattr(args, key, saved[key])
    return saved["train"]


def main(argv=None):
    args, train_argv = parse_args(argv)
    out = Path(args.out).resolve()
    saved_path = out / "sweep.json"
    try:
        if args.address and args.cpus:
            raise SpaceError("--cpus sets the cores of the Ray started here; a cluster (--address) has its own")
        train_argv = settings_of(args, train_argv, saved_path)
        fixed, searched = parse_space(train_argv, args.search == "grid")
        configs = trial_configs(fixed, searched)
        if not ray_installed():  # after the space: its errors are worth knowing before installing Ray
            raise SpaceError(f"sweep.py runs on Ray Tune. {MISSING}")
        if args.search == "optuna" and find_spec("optuna") is None:
            raise SpaceError("--search optuna needs Optuna: pip install optuna")
        prepare_folder(out)
    except (SpaceError, DataError, FolderError) as e:
        return fail(e)
    saved_path.write_text(json.dumps(dict({key: getattr(args, key) for key in SAVED_SETTINGS}, train=train_argv)))
    import ray
    from ray import tune
    start_ray(args.address, args.cpus)
    try:
        if args.resume and tune.Tuner.can_restore(str(out / "tune")):  # the trials, their states, the scheduler
            tuner = tune.Tuner.restore(str(out / "tune"), trainable_of(args, fixed, searched, out), resume_errored=True)
        else:  # a new sweep, or one stopped before Tune saved anything
            tuner = make_tuner(args, fixed, searched, configs, out)
        tuner.fit()
    finally:
        ray.shutdown()
    rows = trial_rows(out)
    unfinished = [row for row in rows if row["state"] in UNFINISHED]
    if unfinished:
        print(f"stopped with {len(unfinished)} of {len(rows)} trials unfinished; carry on with: "
              f"python scripts/sweep.py --resume --out {shlex.quote(str(out))}", file=sys.stderr)
        return INTERRUPTED
    report_results(rows, out, fixed, searched)
    return 0


if __name__ == "__main__":
    sys.exit(main())
