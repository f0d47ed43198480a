#!/usr/bin/env python
"""Re-run the performance log of makemore part 5 with this engine and write
docs/RESULTS.md: the reference numbers and ours side by side, with loss curves.

    python scripts/reproduce.py                      # the four rows, 200,000 steps each
    python scripts/reproduce.py --seeds 42 43 44     # also measures the seed-to-seed spread
    python scripts/reproduce.py --steps 20000        # a quick look (not what RESULTS.md records)

A finished run (its log.json has final losses for the same steps) is reused,
so an interrupted reproduction carries on where it stopped.
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

from tinygrad_wave.cli import fail, non_negative_int, positive_int
from tinygrad_wave.models import PRESETS
from tinygrad_wave.runfolder import FolderError, prepare_folder

# from the notebook of makemore part 5 (train, val)
REFERENCE = {
    "mlp3": ("original: 3-char context, 200 hidden (12K params)", 2.058, 2.105),
    "flat8": ("context 3 -> 8, flat MLP (22K params)", 1.918, 2.027),
    "hier22k": ("flat -> hierarchical, batch norm over (0,1) (22K params)", 1.912, 2.022),
    "hier76k": ("scale up: n_embd 24, n_hidden 128 (76K params)", 1.769, 1.993),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=PRESETS, default=list(REFERENCE), help="rows to run (default: all)")
    p.add_argument("--seeds", nargs="+", type=non_negative_int, default=[42], help="training seeds per row (default: 42)")
    p.add_argument("--steps", type=positive_int, default=200_000, help="steps per run (default %(default)s)")
    p.add_argument("--out", default="runs/reproduce", help="folder of the runs (default %(default)s)")
    p.add_argument("--results", default="docs/RESULTS.md", help="markdown file to write (default %(default)s)")
    return p.parse_args(argv)


def run_folder(args, model, seed):
    """One folder per row, seed and step count, so a short look never meets a full run."""
    suffix = "" if args.steps == 200_000 else f"-{args.steps}steps"
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
    """train.py's main job for one row and seed; its log.json."""
    if finished_log(folder, steps) is None:
        argv = ["--model", model, "--seed", str(seed), "--steps", str(steps), "--out", str(folder),
                "--num-samples", "8", "--quiet"]
        if (folder / "checkpoint.npz").is_file():
            argv.append("--resume")
        status = train.main(argv)
        if status != 0:
            sys.exit(status)  # train.py said why
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


def write_results(path, rows, args):
    lines = [
        "# Results: makemore part 5's performance log, reproduced",
        "",
        f"Made by `python scripts/reproduce.py --steps {args.steps} --seeds {' '.join(map(str, args.seeds))}` "
        f"on {cpu_name()} ({os.cpu_count()} cores, Python {platform.python_version()}), "
        f"float32, batch 32, {args.steps:,} SGD steps at lr 0.1 (0.01 from step 150,000).",
        "Losses are over whole splits in eval mode. Our numbers use the same data split (random.seed(42)) "
        "but NumPy's generator, not torch's, for weights and batches: the same recipe, other random draws.",
        "Training time is the time inside the training loop (data loading and evaluation excluded), "
        "mean over seeds; `python scripts/train.py` with its defaults is the hier76k row at seed 42.",
        "",
        "| row | params | reference train | reference val | ours train | ours val | val - reference | training time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, logs in rows.items():
        title, ref_train, ref_val = REFERENCE[model]
        trains = [log["final"]["train"] for log in logs]
        vals = [log["final"]["val"] for log in logs]
        seconds = statistics.mean(log["train_seconds"] for log in logs)
        params = logs[0]["params"]
        lines.append(f"| {model}: {title} | {params:,} | {ref_train:.3f} | {ref_val:.3f} | "
                     f"{statistics.mean(trains):.3f}{spread(trains)} | {statistics.mean(vals):.3f}{spread(vals)} | "
                     f"{statistics.mean(vals) - ref_val:+.3f} | {seconds:.0f} s |")
    lines += ["", "With several seeds, ours is the mean ± the sample standard deviation over seeds; "
              "per-seed values are below.", ""]
    for model, logs in rows.items():
        lines.append(f"## {model}")
        lines.append("")
        for log in logs:
            f = log["final"]
            lines.append(f"- seed {log['config']['seed']}: train {f['train']:.4f}, val {f['val']:.4f}, "
                         f"test {f['test']:.4f}, {log['train_seconds']:.0f} s; samples: {', '.join(log['samples'][:8])}")
        lines += ["", f"![{model} loss](results/{model}.png)", ""]
    path.write_text("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    results = Path(args.results)
    try:
        prepare_folder(args.out)
        prepare_folder(results.parent / "results", "--results")
        rows = {model: [run_one(model, seed, args.steps, run_folder(args, model, seed)) for seed in args.seeds]
                for model in args.models}
        for model in args.models:
            shutil.copy(run_folder(args, model, args.seeds[0]) / "loss.png", results.parent / "results" / f"{model}.png")
        write_results(results, rows, args)
    except (FolderError, OSError, ValueError) as e:
        return fail(e)
    print(f"wrote {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
