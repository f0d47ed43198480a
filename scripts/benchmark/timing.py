"""Timing: every column times blocks of the same batches, taking turns, and the table."""
import resource
import statistics
import time
from contextlib import contextmanager

import numpy as np

from tinygrad_wave.threads import blas_threads, default_blas_threads

from .steps import CORES


@contextmanager
def thread_limit(n):
    """n threads for NumPy's BLAS (the engine, jit and numpy columns) and for torch."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with blas_threads(n):
            yield
    finally:
        torch.set_num_threads(previous)


def time_block(impl, seed, steps, batch, n_examples):
    """Seconds for `steps` training steps; batch indices from a generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    impl.sync()
    start = time.perf_counter()
    for _ in range(steps):
        impl.step(rng.integers(0, n_examples, batch))
    impl.sync()
    return time.perf_counter() - start


def bench_size(columns, batch, args, n_examples):
    """Warm up, pick the block length, then `reps` repetitions in which every column,
    an (implementation, threads) pair, times one block of the same batches, in an order
    that rotates. Returns (steps per block, {(threads, name): [steps/s per repetition]})."""
    seed = (args.seed, batch)

    def run(column, seed, steps):
        impl, threads = column
        with thread_limit(threads):
            return time_block(impl, seed, steps, batch, n_examples)

    for column in columns:
        run(column, seed + (0,), 2)  # first touch of every buffer
    # a step's time per column: the better of two warm-up blocks, so that one burst of noise
    # does not set the block length; the median column's blocks then last --block-seconds
    step_time = statistics.median(min(run(column, seed + (1, i), args.warmup_steps) for i in range(2))
                                  for column in columns) / args.warmup_steps
    steps = args.steps_per_rep.get(batch) or max(3, round(args.block_seconds / step_time))
    rates = {(threads, impl.name): [] for impl, threads in columns}
    for rep in range(args.reps):
        k = rep % len(columns)
        for impl, threads in columns[k:] + columns[:k]:
            rates[threads, impl.name].append(steps / run((impl, threads), seed + (2, rep), steps))
    return steps, rates


def seconds_for(step, batches):
    """Wall seconds for step(*batch) over the batches, made before the clock starts."""
    begin = time.perf_counter()
    for batch in batches:
        step(*batch)
    return time.perf_counter() - begin


def take_turns(blocks, reps, steps, warmup_steps=3):
    """{name: [steps/s per repetition]} for columns given as {name: block(steps) -> seconds}:
    a warm-up block each (a jit's recorded calls, the caches), then `reps` repetitions in which
    every column times one block of `steps` steps, in an order that rotates, so that noise
    from other processes hits all columns alike."""
    for block in blocks.values():
        block(warmup_steps)
    names = list(blocks)
    rates = {name: [] for name in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            rates[name].append(steps / blocks[name](steps))
    return rates


def time_alone(name, block, reps, steps, warmup_steps=3):
    """--alone: one column, the only library stepping in this process, as a user runs it, on one
    thread. Prints and returns one line: its median steps/s over `reps` blocks, and its page faults
    a step, counted over whole blocks (making their batches included): memory the allocator gave
    back to the OS and asked for again, which the OS zeroes page by page. A process that ran
    another library first has memory to spare, and hides them."""
    with thread_limit(1):
        block(warmup_steps)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        rates = [steps / block(steps) for _ in range(reps)]
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / (reps * steps)
    line = f"{name}, alone in its process: {statistics.median(rates):.1f} steps/s; page faults a step: {faults:.0f}"
    print(line)
    return line


def against_baseline(rates, baseline):
    """A markdown table of each column's median steps/s and its ratio to the baseline column's."""
    base = statistics.median(rates[baseline])
    lines = ["| column | steps/s (median) | against " + baseline + " |", "|---|---|---|"]
    for name, values in rates.items():
        rate = statistics.median(values)
        lines.append(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")
    return "\n".join(lines)


def default_threads(batch, cores):
    """The engine's own default (threads.default_blas_threads): one BLAS thread up to
    batch 128, every usable core above. --threads 1 2 times both."""
    return default_blas_threads(batch) or cores


def threads_for(batch, args):
    """The thread counts to time at this batch size (--threads, or the default)."""
    return sorted({default_threads(batch, CORES) if t == "auto" else int(t) for t in args.threads})


# the ratios the table shows (column, baseline), where both columns were timed
RATIOS = [("engine", "torch"), ("engine", "numpy"), ("jit", "compiled"), ("jit", "numpy")]


def table_header(names):
    head = ["batch", "threads", "steps/rep"]
    for name in names:
        head += [f"{name} min", f"{name} median"]
    head += [f"{a}/{b}" for a, b in RATIOS if a in names and b in names]
    return ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]


def table_row(batch, threads, steps, rates, names, default):
    """rates: {name: [steps/s per repetition]}; `default`: whether `threads` is the default."""
    med = {n: statistics.median(r) for n, r in rates.items()}
    cells = [str(batch), f"{threads}{' (default)' if default else ''}", str(steps)]
    for name in names:
        cells += [f"{min(rates[name]):,.1f}", f"{med[name]:,.1f}"]
    cells += [f"{med[a] / med[b]:.2f}" for a, b in RATIOS if a in names and b in names]
    return "| " + " | ".join(cells) + " |"


# the performance issues' targets for the CPU: (batch, column, baseline, least column/baseline ratio)
TARGETS = [(32, "engine", "torch", 3.0), (32, "engine", "numpy", 0.85), (8192, "engine", "torch", 1.5),
           (32, "jit", "numpy", 1.0), (8192, "jit", "numpy", 0.98)]


def targets(medians):
    """Lines saying where the measured medians (default threads) stand against TARGETS."""
    lines = []
    for batch, column, baseline, wanted in TARGETS:
        if batch in medians and {column, baseline} <= medians[batch].keys():
            ratio = medians[batch][column] / medians[batch][baseline]
            verdict = "met" if ratio >= wanted else "**not met**"
            lines.append(f"- Target at batch {batch}: {column}/{baseline} >= {wanted}: measured {ratio:.2f}, {verdict}")
    return lines + [""] if lines else []
