"""Memory over a run, and the machine the numbers come from."""
import gc
import os
import platform
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np

import tinygrad_wave

from .steps import CORES, ROOT, build
from .timing import time_block


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def memory(args, data):
    """Traced memory (tracemalloc: NumPy's arrays and Python's objects) of the engine,
    jit and numpy columns: what a step holds at its peak and between steps, per batch size;
    then a long run at the smallest batch, where a graph that is not freed would show
    as growth."""
    n_examples = len(data[0])
    lines = ["Traced memory per step (tracemalloc, MiB; weights, gradients and every temporary "
             "the step allocates; not the data set):", "",
             "| batch | engine between steps | engine peak | jit between steps | jit peak | numpy between steps "
             "| numpy peak |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for batch in args.sizes:
        cells = []
        for name in ("engine", "jit", "numpy"):
            gc.collect()
            tracemalloc.start()  # before the weights exist, so that they are counted
            impl, = build("cpu", args.dtype, data, args.seed, only=name)
            time_block(impl, (args.seed, 0), 3, batch, n_examples)
            resting = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            time_block(impl, (args.seed, 1), 1, batch, n_examples)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del impl
            cells += [f"{resting / 2 ** 20:.2f}", f"{peak / 2 ** 20:.2f}"]
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")

    batch, total = min(args.sizes), args.memory_steps
    marks = sorted({min(100, total), min(1000, total), total})
    lines += ["", f"A run of {total} steps at batch {batch}: memory allocated since the run began "
              "and still held after step k (tracemalloc, KiB), and the process's resident memory (MiB):", "",
              "| | " + " | ".join(f"step {k}" for k in marks) + f" | growth {marks[-2]} -> {total} "
              f"| RSS step {marks[0]} | RSS step {total} | gc found |", "|---" + "|---:" * (len(marks) + 4) + "|"]
    for name in ("engine", "jit", "numpy"):
        impl, = build("cpu", args.dtype, data, args.seed, only=name)
        rng = np.random.default_rng((args.seed, 4))
        traced, rss = {}, {}
        gc.collect()
        tracemalloc.start()
        for step in range(1, total + 1):
            impl.step(rng.integers(0, n_examples, batch))
            if step in marks:
                traced[step], rss[step] = tracemalloc.get_traced_memory()[0] / 1024, rss_mb()
        tracemalloc.stop()
        found = gc.collect()
        lines.append(f"| {name} | " + " | ".join(f"{traced[k]:.1f}" for k in marks)
                     + f" | {traced[total] - traced[marks[-2]]:+.1f} | {rss[marks[0]]:.1f} | {rss[total]:.1f} "
                     f"| {found} |")
    lines += ["", "The engine's first few hundred steps fill CPython's free lists of small tuples "
              "(at most 2,000 entries per size, which tracemalloc counts as held); after that its "
              "memory is flat: each step's graph is freed. 'gc found' is what gc.collect() reclaimed "
              "after the run: 0 means reference counting alone freed every graph (no cycles)."]
    return lines


# --- machine description -------------------------------------------------------------------

def machine_lines():
    import threadpoolctl
    import torch
    cpu = "unknown"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "tinygrad_wave"],
                               capture_output=True, text=True).stdout.strip()
        commit = (commit + (" + uncommitted changes" if dirty else "")) or "unknown"
    except OSError:
        commit = "unknown"
    lines = [f"- CPU: {cpu}, {os.cpu_count()} logical cores ({CORES} usable)",
             f"- {platform.platform()}",
             f"- Python {platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__}, "
             f"tinygrad_wave {getattr(tinygrad_wave, '__version__', None) or _dist_version()} (git {commit})",
             f"- torch: MKL {'yes' if torch.backends.mkl.is_available() else 'no'}, "
             f"{torch.get_num_threads()} intra-op threads by default"]
    for info in threadpoolctl.threadpool_info():
        kernel = f", {info['architecture']} kernels" if info.get("architecture") else ""
        lines.append(f"- threadpool: {info['user_api']} {info['internal_api']} {info.get('version')} "
                     f"({Path(info['filepath']).name}){kernel}, {info['num_threads']} threads by default")
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    lines.append(f"- OpenBLAS kernel forced by the environment: {forced}" if forced else
                 "- OpenBLAS kernel: chosen by OpenBLAS for this CPU (OPENBLAS_CORETYPE unset)")
    return lines


def other_load(seconds=1.0):
    """Fraction of all cores busy over `seconds` while this process sleeps (from
    /proc/stat): the work of other processes. None where /proc/stat is missing."""
    def busy_and_total():
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        return sum(ticks) - idle, sum(ticks)
    time.sleep(0.5)  # let this process's idle BLAS and OpenMP threads stop spinning
    try:
        busy0, total0 = busy_and_total()
        time.sleep(seconds)
        busy1, total1 = busy_and_total()
    except (OSError, IndexError, ValueError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1)


def _dist_version():
    try:
        from importlib.metadata import version
        return version("tinygrad_wave")
    except Exception:
        return "unknown"
