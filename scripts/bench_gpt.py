#!/usr/bin/env python3
"""Training steps per second of "Let's build GPT"'s model: tinygrad_wave (eager, and its step
captured by the jit) against torch eager, on the CPU with one thread.

The model is gpt.py's, as tests/support/gpt_lecture_code.py writes it for both libraries (heads
of causal self-attention, feed-forward, layer norm; AdamW), at batch 16, block 64,
n_embd 64, 4 heads, 2 layers, dropout 0, on data/names.txt as one text. A step is
gpt.py's: `_, loss = model(xb, yb)`, zero_grad, backward, AdamW step, on a batch of random windows.
The columns take turns within each repetition, so noise from other processes hits
all of them alike; the table gives the median over repetitions.

Where the difference lies: --matrix-products times the step's GEMMs alone in each library,
--overhead both eager steps on a window of 2 tokens (the time around the arithmetic), and
--inside-ops the time inside tinygrad_wave's ops. --alone COLUMN times one column by itself, as a
user runs one library, and counts its page faults (run it once per column).

    python scripts/bench_gpt.py
    python scripts/bench_gpt.py --reps 7 --steps 20 --matrix-products --overhead
    python scripts/bench_gpt.py --reps 3 --steps 20 --markdown docs/BENCHMARKS.md
    python scripts/bench_gpt.py --alone "tinygrad_wave"; python scripts/bench_gpt.py --alone "torch eager"
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from benchmark.profile import (add_gap_arguments, gap_tables, inside_ops_line, matrix_product_columns,
                              parse_gap_arguments)
from benchmark.timing import seconds_for, take_turns, time_alone

import tinygrad_wave
from tinygrad_wave import jit
from tinygrad_wave.cli import positive_int
from tinygrad_wave.data import DEFAULT_PATH
from tinygrad_wave.threads import blas_threads

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
import gpt_lecture_code  # noqa: E402 (the lecture's model, written once for both libraries)

SIZES = dict(block_size=64, n_embd=64, n_head=4, n_layer=2, dropout=0.0)
BATCH = 16
LIBRARIES = {"tinygrad_wave": tinygrad_wave, "tinygrad_wave jit": tinygrad_wave, "torch eager": torch}


def training_step(lib, vocab_size, capture=False):
    """step(xb, yb) -> loss: gpt.py's training step of its model in `lib`, seeded alike."""
    lib.manual_seed(1337)
    F = lib.nn.functional
    model = gpt_lecture_code.gpt_model(lib, lib.nn, F, vocab_size, device="cpu", **SIZES)
    optimizer = lib.optim.AdamW(model.parameters(), lr=1e-3)

    def step(xb, yb):
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return jit.capture(step) if capture else step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=positive_int, default=5, help="timed repetitions (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=30, help="steps per timed block (default: %(default)s)")
    add_gap_arguments(p, tiny_batch="one window of 2 tokens", columns=LIBRARIES)
    args = parse_gap_arguments(p, argv)

    text = DEFAULT_PATH.read_text()
    alphabet = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = np.array([alphabet[c] for c in text])
    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    columns = {name: training_step(lib, len(alphabet), capture=name.endswith("jit"))
               for name, lib in LIBRARIES.items() if args.alone in (None, name)}

    def batches(lib, steps, batch=BATCH, block_size=SIZES["block_size"]):
        """`steps` batches of `batch` random windows, inputs and targets, as `lib`'s tensors."""
        starts = rng.integers(0, len(ids) - block_size - 1, (steps, batch))
        windows = ids[starts[..., None] + np.arange(block_size + 1)]
        return [(lib.tensor(w[:, :-1]), lib.tensor(w[:, 1:])) for w in windows]

    def block(name, **batch_size):
        return lambda steps: seconds_for(columns[name], batches(LIBRARIES[name], steps, **batch_size))

    tiny = {f"{name}, one 2-token window": block(name, batch=1, block_size=2)
            for name in ("tinygrad_wave", "torch eager")} if args.overhead else {}
    if args.alone:
        return time_alone(args.alone, block(args.alone), args.reps, args.steps)
    with blas_threads(1):
        blocks = {name: block(name) for name in columns}
        if args.matrix_products:
            blocks.update(matrix_product_columns(columns["tinygrad_wave"], batches(tinygrad_wave, 1)[0]))
        rates = take_turns({**blocks, **tiny}, args.reps, args.steps)
        if args.inside_ops:
            ops = inside_ops_line(columns["tinygrad_wave"], batches(tinygrad_wave, args.steps),
                                  rates["torch eager"], "torch eager")
    table = gap_tables(rates, blocks, tiny)
    print(table)
    if args.inside_ops:
        print(ops)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + table + "\n")
    return table


if __name__ == "__main__":
    main()
