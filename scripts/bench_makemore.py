#!/usr/bin/env python3
"""Training steps per second of makemore.py's Transformer: tinygrad_wave (eager, and its step
captured by the jit) against torch eager, on the CPU with one thread.

The model and data are makemore.py's defaults, as tests/support/makemore_code.py writes them for both
libraries: n_layer 4, n_head 4, n_embd 64, names.txt padded to its longest name (block 16,
vocabulary 27), batch 32, AdamW (lr 5e-4, weight decay 0.01, betas 0.9 and 0.99). A step is
makemore's: `logits, loss = model(X, Y)`, `model.zero_grad(set_to_none=True)`, backward,
`optimizer.step()`, on batches of the training split drawn before the clock starts.

The columns take turns within each repetition, so noise from other processes hits both alike;
the table gives the median over repetitions. --profile N prints cProfile's top N functions of
tinygrad_wave's eager step by own time; --matrix-products, --overhead (a batch of one name) and
--inside-ops split the difference as bench_gpt.py's do, and --alone COLUMN times one column by itself.

    python scripts/bench_makemore.py
    python scripts/bench_makemore.py --reps 7 --steps 20 --matrix-products --overhead
    python scripts/bench_makemore.py --reps 7 --steps 20 --markdown docs/BENCHMARKS.md
    python scripts/bench_makemore.py --alone "tinygrad_wave"; python scripts/bench_makemore.py --alone "torch eager"
"""
import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.utils.data

from benchmark.profile import (add_gap_arguments, cprofile_top, gap_tables, inside_ops_line,
                              matrix_product_columns, parse_gap_arguments)
from benchmark.timing import seconds_for, take_turns, thread_limit, time_alone

import tinygrad_wave
import tinygrad_wave.nn
import tinygrad_wave.utils.data
from tinygrad_wave import jit
from tinygrad_wave.cli import positive_int
from tinygrad_wave.data import DEFAULT_PATH, load_words

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
import makemore_code  # noqa: E402 (makemore.py's models and data, written once for both libraries)

SIZES = dict(n_layer=4, n_head=4, n_embd=64, n_embd2=64)  # makemore.py's defaults
BATCH = 32
SEED = 3407
LIBRARIES = {"tinygrad_wave": tinygrad_wave, "tinygrad_wave jit": tinygrad_wave, "torch eager": torch}


def training_data():
    """makemore's training split of names.txt (torch's randperm, so the same in both libraries)."""
    torch.manual_seed(SEED)
    train, _ = makemore_code.split_names(torch, torch.utils.data, load_words(DEFAULT_PATH))
    return train


def training_step(lib, train, capture=False):
    """step(X, Y) -> loss: makemore.py's training step of its Transformer in `lib`, seeded alike."""
    lib.manual_seed(SEED)
    cfg = SimpleNamespace(vocab_size=train.vocab_size(), block_size=train.output_length(), **SIZES)
    model = makemore_code.model_classes(lib, lib.nn, lib.nn.functional)["transformer"](cfg)
    optimizer = lib.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)

    def step(X, Y):
        _, loss = model(X, Y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return jit.capture(step) if capture else step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=positive_int, default=5, help="timed repetitions (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=20, help="steps per timed block (default: %(default)s)")
    p.add_argument("--profile", type=positive_int, metavar="N",
                   help="then profile --steps eager tinygrad_wave steps and print cProfile's top N functions")
    add_gap_arguments(p, tiny_batch="a batch of one name", columns=LIBRARIES)
    args = parse_gap_arguments(p, argv)

    train = training_data()
    rng = np.random.default_rng(0)
    columns = {name: training_step(lib, train, capture=name.endswith("jit"))
               for name, lib in LIBRARIES.items() if args.alone in (None, name)}

    def batches(lib, steps, batch=BATCH):
        """`steps` batches of (X, Y) from `batch` random training names, as `lib`'s tensors."""
        examples = [[train[i] for i in rng.integers(0, len(train), batch)] for _ in range(steps)]
        return [tuple(lib.tensor(np.stack([pair[k].numpy() for pair in names])) for k in (0, 1))
                for names in examples]

    def block(name, batch=BATCH):
        return lambda steps: seconds_for(columns[name], batches(LIBRARIES[name], steps, batch))

    tiny = {f"{name}, one name": block(name, batch=1)
            for name in ("tinygrad_wave", "torch eager")} if args.overhead else {}

    if args.alone:
        return time_alone(args.alone, block(args.alone), args.reps, args.steps)
    with thread_limit(1):
        blocks = {name: block(name) for name in columns}
        if args.matrix_products:
            blocks.update(matrix_product_columns(columns["tinygrad_wave"], batches(tinygrad_wave, 1)[0]))
        rates = take_turns({**blocks, **tiny}, args.reps, args.steps)
        if args.profile:
            eager, examples = columns["tinygrad_wave"], batches(tinygrad_wave, args.steps)
            top = cprofile_top(lambda: seconds_for(eager, examples), args.profile)
        if args.inside_ops:
            ops = inside_ops_line(columns["tinygrad_wave"], batches(tinygrad_wave, args.steps),
                                  rates["torch eager"], "torch eager")
    table = gap_tables(rates, blocks, tiny)
    print(table)
    if args.profile:
        print("\n" + "\n".join(top))
    if args.inside_ops:
        print(ops)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + table + "\n")
    return table


if __name__ == "__main__":
    main()
