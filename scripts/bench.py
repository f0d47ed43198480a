#!/usr/bin/env python3
"""Training-step throughput: tinygrad_wave, eager and replayed, against PyTorch (eager and compiled) and plain NumPy.

One training step of makemore part 5's 76,579-parameter hierarchical model
(Embedding(27, 24) -> [FlattenConsecutive(2), Linear(no bias), BatchNorm1d,
Tanh] x 3 -> Linear(128, 27)), written five ways:

  engine  tinygrad_wave: model forward, F.cross_entropy, zero_grad, backward, SGD step
  jit     the same step captured once by tinygrad_wave.jit and replayed: the same
          ops' forward and backward on the new batch, without Tensors, nodes or walk
  torch   the same model written with torch tensors, loss.backward(), SGD under no_grad
  compiled  that torch step with forward and loss compiled by torch.compile (--no-compile
          leaves it out; where torch.compile fails it is left out with a note)
  numpy   hand-written NumPy with no Tensor objects: forward plus a fused,
          closed-form backward (a floor for the engine's array work: the gap
          between engine and numpy is the engine's own bookkeeping)

All start from the same weights and, in every timed block, see the same
batches: a step is (sample batch indices, forward, loss, backward, SGD update
with lr 0.1), and each implementation draws its indices from its own copy of
one seeded generator. The implementations take turns within each repetition
(the order rotates), so a burst of machine noise hits all of them alike.
Before timing, one float64 step of each is checked to give the same loss, the
same weight update and the same running statistics, and three steps of jit to
be engine's bit for bit.

    python scripts/bench.py                        # the full table, CPU
    python scripts/bench.py --sizes 32 128 --reps 2
    python scripts/bench.py --threads 1 2 --profile --memory --markdown docs/BENCHMARKS.md
    python scripts/bench.py --device cuda          # engine on CuPy, torch on CUDA, no numpy column

The parts live in scripts/benchmark/: steps.py (the four steps and the check),
timing.py (blocks, table, targets), profile.py (--profile), report.py (--memory, machine).
"""
import argparse
import os
import shlex
import statistics
import sys
from pathlib import Path

from benchmark.profile import profile
from benchmark.report import machine_lines, memory, other_load
from benchmark.steps import (CORES, LR, RANDOM_EXAMPLES, ROOT, build, check, compile_problem, implementations,
                             initial_weights, load_data)
from benchmark.timing import bench_size, default_threads, table_header, table_row, targets, threads_for

from tinygrad_wave import backend
from tinygrad_wave.cli import fail, non_negative_int, positive_float, positive_int
from tinygrad_wave.data import DataError
from tinygrad_wave.models import count_parameters
from tinygrad_wave.runfolder import FolderError, prepare_folder


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[32, 128, 512, 2048, 8192], metavar="B",
                   help="batch sizes to time (default: %(default)s)")
    p.add_argument("--reps", type=positive_int, default=5,
                   help="timed repetitions per batch size; the columns take turns in each (default: %(default)s)")
    p.add_argument("--steps-per-rep", type=positive_int, nargs="+", metavar="N",
                   help="training steps per timed block: one number for every size, or one per size "
                        "(default: chosen from the warm-up so that the median column's block lasts "
                        "--block-seconds; larger batches get fewer steps)")
    p.add_argument("--block-seconds", type=positive_float, default=0.75, metavar="S",
                   help="target length of a timed block when --steps-per-rep is not given (default: %(default)s)")
    p.add_argument("--warmup-steps", type=positive_int, default=5, metavar="N",
                   help="steps in each of the two warm-up blocks per column and size, the faster of "
                        "which sets the block length (default: %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: the engine on CuPy (model.to('cuda')), torch on the GPU, no numpy column "
                        "(default: %(default)s)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="floating-point type of weights and activations (default: %(default)s)")
    p.add_argument("--threads", nargs="+", default=["auto"], metavar="N",
                   help="BLAS threads: threadpoolctl's limit for NumPy's BLAS (engine, jit and numpy columns), "
                        "torch.set_num_threads for torch. 'auto' (the default): 1 up to batch 128, "
                        "every usable core above. Several values "
                        "(e.g. --threads 1 2) time each size at each count, all interleaved, one table "
                        "row each")
    p.add_argument("--no-compile", action="store_true",
                   help="leave out the torch.compile column (compiling takes tens of seconds per batch size "
                        "and thread count); it is left out by itself, with a note, where torch.compile fails")
    p.add_argument("--profile", action="store_true",
                   help="(CPU) at the smallest batch, split an engine step into array work and Python "
                        "bookkeeping, phase by phase, the replayed (jit) step likewise, and list cProfile's "
                        "top functions")
    p.add_argument("--profile-steps", type=positive_int, default=300, metavar="N",
                   help="steps measured by --profile (default: %(default)s)")
    p.add_argument("--profile-top", type=positive_int, default=15, metavar="N",
                   help="functions listed from cProfile (default: %(default)s)")
    p.add_argument("--memory", action="store_true",
                   help="(CPU) traced memory (tracemalloc) between steps and at a step's peak per batch "
                        "size, engine, jit and numpy columns; and whether it stays flat over a long run")
    p.add_argument("--memory-steps", type=positive_int, default=5000, metavar="N",
                   help="length of --memory's long run, at the smallest batch (default: %(default)s)")
    p.add_argument("--markdown", metavar="PATH",
                   help="also write the report (table, machine, library versions, BLAS, command line) "
                        "to this markdown file, e.g. docs/BENCHMARKS.md")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "names.txt", metavar="PATH",
                   help="names file, one name a line; random integer data when it does not exist "
                        "(default: data/names.txt)")
    p.add_argument("--random-data", action="store_true",
                   help=f"use {RANDOM_EXAMPLES:,} random integer contexts even when --data exists")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed for weights, random data and batch indices (default: %(default)s)")
    args = p.parse_args(argv)
    spr = args.steps_per_rep or []
    if len(spr) not in (0, 1, len(args.sizes)):
        p.error("--steps-per-rep takes one number, or one per --sizes entry")
    args.steps_per_rep = dict(zip(args.sizes, spr * len(args.sizes) if len(spr) == 1 else spr))
    if args.device == "cuda" and (args.profile or args.memory):
        p.error("--profile and --memory measure host time and host memory: use them with --device cpu")
    if any(t != "auto" and not (t.isdigit() and int(t) > 0) for t in args.threads):
        p.error("--threads takes positive integers or 'auto'")
    if min(args.sizes) < 2:
        p.error("batch norm needs batches of at least 2")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.manual_seed(args.seed)
    report = []

    def say(*lines):
        for line in lines:
            print(line, flush=True)
            report.append(line)

    try:
        if args.markdown:
            prepare_folder(Path(args.markdown).parent, "--markdown")
            if Path(args.markdown).is_dir():
                raise FolderError(f"--markdown {args.markdown} is a folder, not a file")
        if args.device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("--device cuda needs a CUDA build of torch and a GPU; this torch sees none")
            backend.namespace("cuda")
        data = load_data(args.data, args.random_data, args.seed)
    except (FolderError, DataError, RuntimeError) as e:
        return fail(e)
    command = "python " + shlex.join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:])
    problem = None if args.no_compile else compile_problem(args.device)
    compiled = not args.no_compile and problem is None
    names = [cls.name for cls in implementations(args.device, compiled)]
    say("# tinygrad_wave training-step benchmark", "",
        f"Command (from the repository root): `{command}`", "", *machine_lines(), "",
        f"- Model: makemore part 5's hierarchical model, "
        f"{count_parameters(initial_weights(data[2], args.seed)[0]):,} parameters; "
        f"SGD lr {LR}; {args.dtype} on {args.device}",
        f"- Data: {data[3]}",
        "- Columns: **engine** is tinygrad_wave (model, F.cross_entropy, zero_grad, backward, "
        "optim.SGD); **jit** the same step captured by tinygrad_wave.jit and replayed (same ops, no "
        "Tensors, nodes or graph walk; bit-identical to engine); **torch** the same model in PyTorch "
        "eager, as makemore writes it; **compiled** that torch step with its forward and loss "
        "(hence its backward) compiled by torch.compile; **numpy** a "
        "hand-written NumPy step with a fused closed-form backward and no Tensor objects (on cuda: "
        "no numpy column). A step samples a batch, runs forward, loss, backward and the SGD update; "
        "every column sees the same batches.")

    if problem is not None:
        say(f"- No compiled column: torch.compile fails here ({problem})")
    loss, worst = check(args.device, data, args.seed, compiled)
    say(f"- Check: one float64 step at batch 32 gives loss {loss:.6f} and the same weight update and "
        f"running statistics in every column (largest difference {worst:.1e}); three steps of jit "
        "(the third replayed) equal engine's bit for bit", "")
    load = other_load()
    if load is not None:
        say(f"- Other work before the run: {100 * load:.0f} % of the cores busy (1 s sample)", "")
        if load > 0.1:
            say("> **Warning:** the machine was not idle: other work shares the cores, and "
                "multi-threaded BLAS suffers most from it (two threads can turn ten times slower).", "")

    say("## Steps per second", "",
        f"{args.reps} repetitions per batch size; in each, every column times one block of steps "
        "(the same batches) after a warm-up, the columns taking turns. min is the slowest "
        "repetition, the ratios compare medians (above 1: the first column is faster).", "",
        *table_header(names))
    medians = {}  # batch -> {column: median steps/s} at the default thread count
    for batch in args.sizes:
        counts = threads_for(batch, args)
        columns = [(impl, threads) for threads in counts
                   for impl in build(args.device, args.dtype, data, args.seed, compiled=compiled)]
        steps, rates = bench_size(columns, batch, args, len(data[0]))
        for threads in counts:
            default = len(counts) > 1 and threads == default_threads(batch, CORES)
            say(table_row(batch, threads, steps, {name: rates[threads, name] for name in names}, names, default))
            if default or len(counts) == 1:
                medians[batch] = {name: statistics.median(rates[threads, name]) for name in names}
        del columns
    say("", *targets(medians))

    if args.profile:
        say("## Where the engine's time goes", "", *profile(args, data), "")
    if args.memory:
        say("## Memory", "", *memory(args, data), "")
    load = other_load()
    if load is not None:
        say(f"Other work after the run: {100 * load:.0f} % of the cores busy (1 s sample).")
    if args.markdown:
        Path(args.markdown).write_text("\n".join(report) + "\n")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
