#!/usr/bin/env python3
"""Positions per second: convolutions over whole names against part 5's
hierarchical model run once per position.

A position is one (context, next character) pair trained on. Each column
times training steps (forward, cross-entropy, backward, SGD update) in float32:

  hier76k per position   the 76,579-parameter hierarchical model on batches of 32
                         build_dataset contexts: 32 positions per step, each
                         computing its own 4 + 2 + 1 Linear rows
  hier76k as conv        the same weights as causal convolutions with dilations
                         1, 2, 4 (models.as_convolutions) on 32 whole names laid
                         end to end: every position in one pass, neighbours
                         sharing what they have in common
  wavenet                the WaveNet preset, on the same batches of names

The convolutions also compute the block_size '.' positions in front of each
name, which have no target: they count as cost, not as positions. The
columns take turns within each repetition, so noise from other processes
hits all of them alike; the table gives the median over repetitions.

    python scripts/bench_wavenet.py
    python scripts/bench_wavenet.py --reps 3 --seconds 0.5
"""
import argparse
import statistics
import time

import numpy as np

import bench
from tinygrad_wave import manual_seed
from tinygrad_wave.threads import blas_threads
from tinygrad_wave.cli import non_negative_int, positive_float, positive_int
from tinygrad_wave import functional as F
from tinygrad_wave.data import IGNORE_INDEX, build_dataset, build_sequences, build_vocab, load_words, pack, split_words
from tinygrad_wave.models import PRESETS, WaveNet, as_convolutions, build_model, count_parameters
from tinygrad_wave.optim import SGD

NAMES_PER_STEP = 32  # whole names per convolutional step
CONTEXTS_PER_STEP = 32  # contexts per step of the hierarchical model, as in the reference run


class Column:
    """A model, an optimiser and a way to draw one batch: step() trains on it and
    returns the number of positions it trained on."""

    def __init__(self, name, model, params, batch):
        self.name, self.model, self.batch = name, model, batch
        self.optimizer = SGD(params, lr=0.01)

    def step(self, rng):
        x, y = self.batch(rng)
        logits = self.model(x)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return int((y != IGNORE_INDEX).sum())


def columns(words, seed):
    itos = build_vocab(words)
    block_size = PRESETS["hier76k"]["block_size"]
    X, Y = build_dataset(words, block_size, itos)
    S, T = build_sequences(words, block_size, itos)

    def contexts(rng):
        ix = rng.integers(0, len(X), CONTEXTS_PER_STEP)
        return X[ix], Y[ix]

    def names(rng):
        return pack(S, T, rng.integers(0, len(S), NAMES_PER_STEP), block_size)

    manual_seed(seed)
    hier = build_model(len(itos), **PRESETS["hier76k"])
    convs = as_convolutions(hier)
    wavenet_config = {k: PRESETS["wavenet"][k] for k in ("block_size", "n_embd", "n_hidden", "dropout")}
    wavenet = WaveNet(len(itos), **wavenet_config)
    return [Column("hier76k per position", hier, hier.parameters(), contexts),
            Column("hier76k as conv", convs, convs.parameters(), names),
            Column("wavenet", wavenet, wavenet.parameters(), names)]


def measure(cols, args):
    """{name: [positions/s per repetition]}, the columns taking turns in a rotating order."""
    rng = np.random.default_rng(args.seed)
    for col in cols:  # warm-up, and the steps that make one block last about --seconds
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds / 2:
            col.step(rng)
            n += 1
        col.steps = max(3, round(2 * n))
    rates = {col.name: [] for col in cols}
    for rep in range(args.reps):
        k = rep % len(cols)
        for col in cols[k:] + cols[:k]:
            start, positions = time.perf_counter(), 0
            for _ in range(col.steps):
                positions += col.step(rng)
            rates[col.name].append(positions / (time.perf_counter() - start))
    return rates


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=positive_int, default=5, help="timed repetitions per column (default %(default)s)")
    p.add_argument("--seconds", type=positive_float, default=1.0, help="length of one timed block (default %(default)s)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (default %(default)s, as train.py at batch 32)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights and batches (default 0)")
    args = p.parse_args(argv)
    words = split_words(load_words(bench.ROOT / "data" / "names.txt"))[0]
    cols = columns(words, args.seed)
    load = bench.other_load()
    with blas_threads(args.threads):
        rates = measure(cols, args)
    base = statistics.median(rates[cols[0].name])
    lines = ["| model | params | positions per step | positions/s min | positions/s median | vs per position |",
             "|---|---:|---:|---:|---:|---:|"]
    for col in cols:
        med = statistics.median(rates[col.name])
        per_step = CONTEXTS_PER_STEP if col is cols[0] else f"~{NAMES_PER_STEP * (len(''.join(words)) / len(words) + 1):.0f}"
        lines.append(f"| {col.name} | {count_parameters(col.model):,} | {per_step} | {min(rates[col.name]):,.0f} | "
                     f"{med:,.0f} | {med / base:.2f} |")
    conv = statistics.median(rates["hier76k as conv"])
    lines += ["", f"Target: the convolutional forward and backward costs less per position than the "
              f"hierarchical model run once per position: {conv / base:.2f}x the positions per second, "
              + ("met." if conv > base else "**not met**."),
              f"{args.reps} repetitions, {args.threads} BLAS thread(s); other processes kept "
              + (f"{load:.0%} of the CPU busy just before." if load is not None else "an unknown share of the CPU busy.")]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
