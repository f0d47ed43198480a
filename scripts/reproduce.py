#!/usr/bin/env python
"""Re-run the performance log of makemore part 5, and the WaveNets, with this
engine and write docs/RESULTS.md: the reference numbers and ours side by side,
with loss curves.

    python scripts/reproduce.py                      # every row, seed 42, each at its preset's steps
    python scripts/reproduce.py --seeds 42 43 44     # also measures the seed-to-seed spread
    python scripts/reproduce.py --models wavenet --seeds 42 43 44   # some rows: the others are kept
    python scripts/reproduce.py --steps 20000        # a quick look (not what RESULTS.md records)

Every row and seed is one train.py run, and the runs go out together as Ray tasks,
one core each: on every core of this machine, or with --address on a cluster
started with `ray start` (every machine with the project at the same path, and
--out on a file system they share). --serial runs them one after another in this
process, as does a machine without Ray; the results are the same.

Each row's per-seed results go into docs/results/summary.json, and RESULTS.md
is written from all of it, so re-running some rows (or seeds) keeps the others. A
finished run (its log.json has final losses for the same steps) is reused, and an
unfinished one resumes from its checkpoint, so an interrupted reproduction carries
on where it stopped.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
from pathlib import Path

import train
from on_ray import MISSING, ray_installed, start_ray

from tinygrad_wave.cli import fail, non_negative_int, positive_int
from tinygrad_wave.models import PRESETS
from tinygrad_wave.runfolder import FolderError, prepare_folder
from tinygrad_wave.training import DEFAULTS, PRESET_TRAINING

# from the notebook of makemore part 5 (train, val); the WaveNets have no reference
ROWS = {
    "mlp3": ("original: 3-char context, 200 hidden (12K params)", 2.058, 2.105),
    "flat8": ("context 3 -> 8, flat MLP (22K params)", 1.918, 2.027),
    "hier22k": ("flat -> hierarchical, batch norm over (0,1) (22K params)", 1.912, 2.022),
    "hier76k": ("scale up: n_embd 24, n_hidden 128 (76K params)", 1.769, 1.993),
    "wavenet": ("WaveNet, receptive field 8, trained on whole names (75K params)", None, None),
    "wavenet16": ("WaveNet, receptive field 16, trained on whole names (76K params)", None, None),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=ROWS, default=list(ROWS), help="rows to run (default: all)")
    p.add_argument("--seeds", nargs="+", type=non_negative_int, default=[42], help="training seeds per row (default: 42)")
    p.add_argument("--steps", type=positive_int, help="steps per run (default: each preset's, 200,000 for part 5's rows)")
    p.add_argument("--out", default="runs/reproduce", help="folder of the runs (default %(default)s)")
    p.add_argument("--results", default="docs/RESULTS.md",
                   help="markdown file to write; summary.json and the plots go in results/ beside it "
                        "(default %(default)s)")
    p.add_argument("--serial", action="store_true", help="one run at a time in this process, without Ray")
    p.add_argument("--address", help="a running Ray cluster (`auto` on one of its machines, or HOST:PORT); "
                                     "default: Ray started on this machine")
    p.add_argument("--cpus", type=positive_int, help="cores of the Ray started here, one run each (default: all)")
    return p.parse_args(argv)


def preset_steps(model):
    return PRESET_TRAINING.get(model, {}).get("steps", DEFAULTS["steps"])


def run_folder(args, model, seed, steps):
    """One folder per row, seed and step count, so a short look never meets a full run."""
    suffix = "" if steps == preset_steps(model) else f"-{steps}steps"
    return Path(args.out) / f"{model}-seed{seed}{suffix}"


def finished_log(folder, steps):
    """The log.json of a run that finished `steps` steps, or None; ValueError if it is damaged."""
    log = folder / "log.json"
    if not log.is_file():
        return None
    try:
        data = json.loads(log.read_text())
        finished = data["final"] and data["step"] == steps
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{log} is damaged ({type(e).__name__}: {e}): delete {folder} to redo that run") from None
    return data if finished else None


def run_one(model, seed, steps, folder):
    """train.py's main job for one row and seed on one BLAS thread, unless the folder holds it
    finished already (resumed if it holds it unfinished); train.py's exit status."""
    if finished_log(folder, steps) is not None:
        return 0
    argv = ["--model", model, "--seed", str(seed), "--steps", str(steps), "--out", str(folder),
            "--num-samples", "8", "--threads", "1", "--quiet"]
    if (folder / "checkpoint.npz").is_file():
        argv.append("--resume")
    return train.main(argv)


def run_all(jobs, args):
    """train.py's exit status of each (model, seed, steps, folder) in `jobs`, yielded in their
    order as they are known: one after another here, or all at once as Ray tasks."""
    if args.serial:
        yield from (run_one(*job) for job in jobs)
        return
    import ray
    start_ray(args.address, args.cpus)
    try:
        task = ray.remote(num_cpus=1)(run_one)  # one core each, as run_one's one BLAS thread
        for result in [task.remote(*job) for job in jobs]:  # all started before the first is awaited
            yield ray.get(result)
    finally:
        ray.shutdown()


def log_of(status, folder, steps):
    """The log.json of a run that train.py finished; SystemExit with its status when it did not (it said why)."""
    if status != 0:
        sys.exit(status)
    log = finished_log(folder, steps)
    if log is None:
        raise ValueError(f"{folder} holds a finished run but not its log.json: delete the folder to redo it")
    return log


def spread(values):
    return f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""


def cpu_name():
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def result_of(log):
    """What RESULTS.md shows of one run."""
    final = log["final"]
    return dict(seed=log["config"]["seed"], steps=log["step"], params=log["params"], train=final["train"],
                val=final["val"], test=final["test"], seconds=log["train_seconds"], samples=log["samples"][:8])


def merged(kept, new):
    """A row's results: the new seeds, and the kept ones of other seeds that ran as many steps."""
    seeds, steps = {r["seed"] for r in new}, new[0]["steps"]
    return sorted([r for r in kept if r["seed"] not in seeds and r["steps"] == steps] + new, key=lambda r: r["seed"])


def targets(summary):
    """Where the WaveNet (receptive field 8) stands against hier76k: the issue's targets."""
    if not (summary.get("wavenet") and summary.get("hier76k")):
        return []
    mean = {model: {key: statistics.mean(r[key] for r in summary[model]) for key in ("val", "seconds")}
            for model in ("wavenet", "hier76k")}
    wave, hier = mean["wavenet"], mean["hier76k"]
    best = min(r["val"] for r in summary["wavenet"])
    yes = {True: "met", False: "**not met**"}
    return [f"Targets, from the rows above: the WaveNet with receptive field 8 beats hier76k's val loss "
            f"({wave['val']:.3f} against {hier['val']:.3f}): {yes[wave['val'] < hier['val']]}; in no more training "
            f"time ({wave['seconds']:.0f} s against {hier['seconds']:.0f} s): {yes[wave['seconds'] <= hier['seconds']]}; "
            f"val <= 1.97 with the preset's training settings: {yes[wave['val'] <= 1.97]} (best seed {best:.3f}). Times "
            "compare only between rows run "
            "together, under the same load; docs/WAVENET.md says how these were.", ""]


def commands_of(summary):
    """The reproduce.py calls that made these rows: one, or one per group of rows sharing their seeds."""
    groups = {}
    for model, results in summary.items():
        groups.setdefault(tuple(sorted(r["seed"] for r in results)), []).append(model)
    if len(groups) == 1:
        return [f"python scripts/reproduce.py --seeds {' '.join(map(str, next(iter(groups))))}"]
    return [f"python scripts/reproduce.py --models {' '.join(models)} --seeds {' '.join(map(str, seeds))}"
            for seeds, models in groups.items()]


# A sweep's record (scripts/sweep.py's table and figure, and its best configuration at more
# seeds), kept beside summary.json and shown in RESULTS.md after the targets: written by hand,
# since no reproduce.py row makes it
SWEEP_RECORD = "sweep.md"


def write_results(path, summary):
    lines = [
        "# Results: makemore part 5's performance log, reproduced, and the WaveNet",
        "",
        "Made by " + " and ".join(f"`{c}`" for c in commands_of(summary)) + " (rows run at "
        "different times go into "
        f"results/summary.json and are kept) on {cpu_name()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}), float32. Training time is the time inside the training loop (data "
        "loading and evaluation excluded), mean over seeds, on a machine shared with other work: "
        "compare times measured together.",
        "",
        "Part 5's rows: batch 32 contexts, SGD lr 0.1 (0.01 from step 150,000), 200,000 steps. Our numbers use "
        "the same data split (random.seed(42)) and torch's random streams: manual_seed(seed) draws the initial "
        "weights and every batch's torch.randint as torch does, so at seed 42 the first steps are the lecture's "
        "own (float32 rounding then lets the two runs drift apart, as two machines' would). `python "
        "scripts/train.py` with its defaults is the hier76k row at seed 42.",
        "",
        "WaveNet rows (docs/WAVENET.md): batches of 32 whole names laid end to end (about 230 characters a "
        "step, every position trained at once), SGD with momentum 0.9, lr 0.05 (0.005 for the last quarter of "
        "the steps), dropout 0.2 on the gated activations. Their losses are per character over the same "
        "splits as part 5's rows, so the numbers compare directly. All numbers are from the final checkpoint.",
        "",
        "Losses are over whole splits in eval mode. With several seeds, ours is the mean ± the sample standard "
        "deviation over seeds; per-seed values are below.",
        "",
        "| row | params | steps | reference train | reference val | ours train | ours val | val - reference | training time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [model for model in ROWS if summary.get(model)]
    for model in rows:
        title, ref_train, ref_val = ROWS[model]
        results = summary[model]
        trains, vals = [r["train"] for r in results], [r["val"] for r in results]
        ref = (f"{ref_train:.3f} | {ref_val:.3f}" if ref_val else "- | -")
        diff = f"{statistics.mean(vals) - ref_val:+.3f}" if ref_val else "-"
        lines.append(f"| {model}: {title} | {results[0]['params']:,} | {results[0]['steps']:,} | {ref} | "
                     f"{statistics.mean(trains):.3f}{spread(trains)} | {statistics.mean(vals):.3f}{spread(vals)} | "
                     f"{diff} | {statistics.mean(r['seconds'] for r in results):.0f} s |")
    lines += [""] + targets(summary)
    record = path.parent / "results" / SWEEP_RECORD
    if record.is_file():
        lines += [record.read_text().rstrip(), ""]
    for model in rows:
        lines += [f"## {model}", ""]
        for r in summary[model]:
            lines.append(f"- seed {r['seed']}: train {r['train']:.4f}, val {r['val']:.4f}, test {r['test']:.4f}, "
                         f"{r['seconds']:.0f} s; samples: {', '.join(r['samples'])}")
        lines += ["", f"![{model} loss](results/{model}.png)", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    results = Path(args.results)
    plots = results.parent / "results"
    summary_path = plots / "summary.json"
    try:
        if args.address and args.cpus:
            raise ValueError("--cpus sets the cores of the Ray started here; a cluster (--address) has its own")
        if not (args.serial or ray_installed()):
            print(f"note: {MISSING}; running one run at a time (--serial)", file=sys.stderr)
            args.serial = True
        prepare_folder(args.out)
        prepare_folder(plots, "--results")
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        jobs = [(model, seed, args.steps or preset_steps(model)) for model in args.models for seed in args.seeds]
        jobs = [(model, seed, steps, run_folder(args, model, seed, steps)) for model, seed, steps in jobs]
        for _, _, steps, folder in jobs:
            finished_log(folder, steps)  # a damaged log.json is refused here, before any run starts
        logs = {}
        for (model, seed, steps, folder), status in zip(jobs, run_all(jobs, args)):
            logs[model, seed] = log_of(status, folder, steps)
            if seed == args.seeds[-1]:  # the row is complete
                summary[model] = merged(summary.get(model, []), [result_of(logs[model, s]) for s in args.seeds])
                shutil.copy(run_folder(args, model, args.seeds[0], steps) / "loss.png", plots / f"{model}.png")
                summary_path.write_text(json.dumps(summary, indent=1))  # after each row: an interruption keeps it
        write_results(results, summary)
    except (FolderError, OSError, ValueError) as e:
        return fail(e)
    except KeyboardInterrupt:  # on Ray (a serial run's train.py handles Ctrl-C itself): the tasks are ended
        print("stopped by Ctrl-C: the same command carries on (finished runs are kept, the others resume "
              "from their last checkpoint)", file=sys.stderr)
        return 130
    print(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
