#!/usr/bin/env python
"""Sample names from a checkpoint written by scripts/train.py.

    python scripts/sample.py --checkpoint runs/hier76k --num 10     # the run's folder
    python scripts/sample.py --checkpoint runs/hier76k/best.npz --mark-train

Names are printed one a line, without the end token '.'.
"""
import argparse
import sys
from pathlib import Path

from tinygrad_wave import backend
from tinygrad_wave.cli import fail, non_negative_int, positive_float
from tinygrad_wave.data import DataError, ensure_names, load_words, split_words
from tinygrad_wave.runfolder import RunFolder
from tinygrad_wave.training import Run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.npz or best.npz written by scripts/train.py, or the run's folder (its checkpoint.npz)")
    p.add_argument("--num", type=non_negative_int, default=20, help="how many names (default %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling (default %(default)s)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="positive; below 1: safer, more common names; above 1: wilder ones (default %(default)s)")
    p.add_argument("--mark-train", action="store_true",
                   help="append ' (in training data)' to names the model saw in training")
    p.add_argument("--data", help="the names file, for --mark-train (default: the one the checkpoint was trained on)")
    p.add_argument("--device", choices=backend.DEVICES,
                   help="run the model here rather than where it was trained (a cuda checkpoint on a CPU machine)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        checkpoint = Path(args.checkpoint)
        if checkpoint.is_dir():
            checkpoint = RunFolder(checkpoint).checkpoint
        run = Run.load(checkpoint, device=args.device)  # reads only what a checkpoint holds, checked first
        data = args.data or run.config.get("data")
        seen = set(split_words(load_words(ensure_names(data)))[0]) if args.mark_train else set()
    except (ValueError, RuntimeError, DataError) as e:  # not a checkpoint, no GPU, bad --data
        return fail(e)
    for name in run.sample(args.num, seed=args.seed, temperature=args.temperature):
        print(name + (" (in training data)" if name in seen else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
