#!/usr/bin/env python3
"""Training-step throughput: tinygrad_wave against PyTorch eager and plain NumPy.

One training step of makemore part 5's 76,579-parameter hierarchical model
(Embedding(27, 24) -> [FlattenConsecutive(2), Linear(no bias), BatchNorm1d,
Tanh] x 3 -> Linear(128, 27)), written three times:

  engine  tinygrad_wave: model forward, F.cross_entropy, zero_grad, backward, SGD step
  torch   the same model written with torch tensors, loss.backward(), SGD under no_grad
  numpy   hand-written NumPy with no Tensor objects: forward plus a fused,
          closed-form backward (a floor for the engine's array work: the gap
          between engine and numpy is the engine's own bookkeeping)

All three start from the same weights and, in every timed block, see the same
batches: a step is (sample batch indices, forward, loss, backward, SGD update
with lr 0.1), and each implementation draws its indices from its own copy of
one seeded generator. The implementations take turns within each repetition
(the order rotates), so a burst of machine noise hits all of them alike.
Before timing, one float64 step of each is checked to give the same loss, the
same weight update and the same running statistics.

    python scripts/bench.py                        # the full table, CPU
    python scripts/bench.py --sizes 32 128 --reps 2
    python scripts/bench.py --threads 1 2 --profile --memory --markdown docs/BENCHMARKS.md
    python scripts/bench.py --device cuda          # engine on CuPy, torch on CUDA, no numpy column
"""
import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import re
import shlex
import statistics
import subprocess
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import tinygrad_wave
from tinygrad_wave import Tensor, backend
from tinygrad_wave import functional as F
from tinygrad_wave.autograd import Function
from tinygrad_wave.cli import fail, non_negative_int, positive_float, positive_int
from tinygrad_wave.data import DataError, build_dataset, build_vocab, load_words, split_words
from tinygrad_wave.models import PRESETS, build_model, count_parameters
from tinygrad_wave.optim import SGD
from tinygrad_wave.runfolder import FolderError, prepare_folder

ROOT = Path(__file__).resolve().parent.parent
CONFIG = PRESETS["hier76k"]  # block_size 8, n_embd 24, n_hidden 128, hierarchical
LR = 0.1
EPS, MOMENTUM = 1e-5, 0.1  # BatchNorm1d's defaults, in all three implementations
RANDOM_EXAMPLES = 200_000
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- data ----------------------------------------------------------------------------

def load_data(path, random_data, seed):
    """(X, Y, vocab_size, description): contexts (N, block_size) and next-character
    targets (N,), both int64. makemore's training split of names.txt when it exists,
    else random integers."""
    block_size = CONFIG["block_size"]
    if not random_data and path.exists():
        words = load_words(path)
        itos = build_vocab(words)
        X, Y = build_dataset(split_words(words)[0], block_size, itos)
        return (X, Y, len(itos),
                f"names data set {_shown(path)} (makemore's training split, {len(X):,} examples)")
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 27, (RANDOM_EXAMPLES, block_size))
    Y = rng.integers(0, 27, RANDOM_EXAMPLES)
    return X, Y, 27, f"random integer contexts and targets in [0, 27) ({RANDOM_EXAMPLES:,} examples)"


def _shown(path):
    """`path` relative to the repository root when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def initial_weights(vocab_size, seed):
    """A float32 engine model and host copies of its (parameters, buffers), in the
    engine's order: embedding, (weight, gamma, beta) per level, output weight, bias;
    (running_mean, running_var) per level."""
    backend.manual_seed(seed)
    model = build_model(vocab_size, **CONFIG)
    return model, ([p.numpy() for p in model.parameters()], [b.numpy() for b in model.buffers()])


def unpack(params, buffers):
    """emb, [(W, gamma, beta, running_mean, running_var) per level], (W_out, b_out)."""
    emb, *middle, w_out, b_out = params
    trained = [middle[i:i + 3] for i in range(0, len(middle), 3)]
    running = [buffers[i:i + 2] for i in range(0, len(buffers), 2)]
    return emb, [(*t, *r) for t, r in zip(trained, running)], (w_out, b_out)


# --- the three implementations of one training step ------------------------------------
# Each has step(ix) -> loss, sync() (wait for the device), parameters() and buffers()
# (host NumPy copies, in the engine's order).

def _no_mark(phase):
    pass


class EngineStep:
    name = "engine"

    def __init__(self, model, weights, X, Y, device, dtype):
        self.device, self.xp = device, backend.namespace(device)
        self.model = model.to(device, dtype)
        self.optimizer = SGD(self.model.parameters(), lr=LR)
        self.X, self.Y = backend.to_array(X, device=device), backend.to_array(Y, device=device)

    def step(self, ix, mark=_no_mark):
        """`mark(phase)` is called at the end of each phase (used by --profile)."""
        ix = self.xp.asarray(ix)  # host indices to the device (no-op on the CPU)
        Xb = Tensor(self.X[ix], device=self.device)
        Yb = Tensor(self.Y[ix], device=self.device)
        mark("batch")
        logits = self.model(Xb)
        mark("forward")
        loss = F.cross_entropy(logits, Yb)
        mark("loss")
        self.optimizer.zero_grad()
        mark("zero_grad")
        loss.backward()
        mark("backward")
        self.optimizer.step()
        mark("sgd")
        return loss

    def sync(self):
        if self.device == "cuda":
            self.xp.cuda.Device().synchronize()

    def parameters(self):
        return [p.numpy() for p in self.model.parameters()]

    def buffers(self):
        return [b.numpy() for b in self.model.buffers()]


class TorchStep:
    """The model as makemore part 5 writes it, on plain torch tensors."""
    name = "torch"

    def __init__(self, model, weights, X, Y, device, dtype):
        import torch
        self.torch, self.device = torch, device
        tdtype = getattr(torch, np.dtype(dtype).name)
        params, buffers = weights
        self.params = [torch.tensor(p, dtype=tdtype, device=device, requires_grad=True) for p in params]
        self._buffers = [torch.tensor(b, dtype=tdtype, device=device) for b in buffers]
        self.emb, self.levels, (self.w_out, self.b_out) = unpack(self.params, self._buffers)
        self.X, self.Y = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)

    def step(self, ix):
        torch = self.torch
        ix = torch.from_numpy(ix).to(self.device)
        Xb, Yb = self.X[ix], self.Y[ix]
        x = self.emb[Xb]  # (B, 8, n_embd)
        for W, gamma, beta, running_mean, running_var in self.levels:
            B, T, C = x.shape
            x = x.view(B, T // 2, C * 2)  # FlattenConsecutive(2)
            if T == 2:
                x = x.squeeze(1)
            x = x @ W
            dims = (0, 1) if x.ndim == 3 else 0
            mean = x.mean(dims, keepdim=True)
            var = x.var(dims, keepdim=True)  # unbiased, as makemore
            xhat = (x - mean) / torch.sqrt(var + EPS)
            x = torch.tanh(gamma * xhat + beta)
            with torch.no_grad():
                running_mean.mul_(1 - MOMENTUM).add_(mean.reshape(-1), alpha=MOMENTUM)
                running_var.mul_(1 - MOMENTUM).add_(var.reshape(-1), alpha=MOMENTUM)
        loss = torch.nn.functional.cross_entropy(x @ self.w_out + self.b_out, Yb)
        for p in self.params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= LR * p.grad
        return loss

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def parameters(self):
        return [p.detach().cpu().numpy().copy() for p in self.params]

    def buffers(self):
        return [b.cpu().numpy().copy() for b in self._buffers]


class NumpyStep:
    """Forward and backward written out in NumPy, every activation a 2-D array:
    FlattenConsecutive(2) of a (rows, C) array is a reshape to (rows / 2, 2 C),
    (B, T, C) @ W is one (B T, C) @ W GEMM, and batch norm over dims (0, 1) of
    (B, T, C) is a reduction over the rows."""
    name = "numpy"

    def __init__(self, model, weights, X, Y, device, dtype):
        params, buffers = weights
        self.params = [p.astype(dtype) for p in params]
        self._buffers = [b.astype(dtype) for b in buffers]
        self.emb, self.levels, (self.w_out, self.b_out) = unpack(self.params, self._buffers)
        self.X, self.Y, self.dtype = X, Y, dtype
        self.classes = np.arange(self.emb.shape[0])

    def step(self, ix):
        Xb, Yb = self.X[ix], self.Y[ix]
        B = len(ix)
        # forward: embedding gather, then per level flatten -> GEMM -> batch norm -> tanh
        act = self.emb[Xb.reshape(-1)]  # (B * 8, n_embd)
        saved = []
        for W, gamma, beta, running_mean, running_var in self.levels:
            x = act.reshape(-1, 2 * act.shape[1])  # FlattenConsecutive(2)
            h = x @ W
            n = h.shape[0]
            mean = h.mean(0)
            centered = h - mean
            var = (centered * centered).sum(0) / (n - 1)
            inv_std = (var + EPS) ** -0.5
            xhat = centered * inv_std
            act = np.tanh(gamma * xhat + beta)
            running_mean *= 1 - MOMENTUM
            running_mean += MOMENTUM * mean
            running_var *= 1 - MOMENTUM
            running_var += MOMENTUM * var
            saved.append((x, xhat, inv_std, act))
        logits = act @ self.w_out + self.b_out  # act is (B, n_hidden) now
        shifted = logits - logits.max(1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(1, keepdims=True)
        rows = np.arange(B)
        loss = -(shifted[rows, Yb] - np.log(total[:, 0])).mean()

        # backward
        dlogits = exp / total  # cross-entropy: (softmax - onehot) / B
        dlogits[rows, Yb] -= 1
        dlogits /= B
        grads = [act.T @ dlogits, dlogits.sum(0)]  # output weight and bias
        dact = dlogits @ self.w_out.T
        for (W, gamma, *_), (x, xhat, inv_std, y) in zip(reversed(self.levels), reversed(saved)):
            dy = dact * (1 - y * y)  # tanh: 1 - y^2
            n = dy.shape[0]
            dbeta = dy.sum(0)
            dgamma = (dy * xhat).sum(0)
            dh = (gamma * inv_std) * (dy - dbeta / n - xhat * (dgamma / (n - 1)))  # batch norm, closed form
            grads[:0] = [x.T @ dh, dgamma, dbeta]
            dact = (dh @ W.T).reshape(-1, W.shape[0] // 2)  # undo the flatten
        onehot = (Xb.reshape(-1)[:, None] == self.classes).astype(self.dtype)
        grads.insert(0, onehot.T @ dact)  # embedding: scatter-add as a one-hot matmul
        for p, g in zip(self.params, grads):
            p -= LR * g
        return loss

    def sync(self):
        pass

    def parameters(self):
        return [p.copy() for p in self.params]

    def buffers(self):
        return [b.copy() for b in self._buffers]


def implementations(device):
    return (EngineStep, TorchStep) if device == "cuda" else (EngineStep, TorchStep, NumpyStep)


def build(device, dtype, data, seed, only=None):
    """Fresh instances of every implementation (or the one named `only`), all from
    the same initial weights."""
    X, Y, vocab = data[:3]
    impls = []
    for cls in implementations(device):
        if only not in (None, cls.name):
            continue
        model, weights = initial_weights(vocab, seed)
        impls.append(cls(model, weights, X, Y, device, np.dtype(dtype)))
    return impls


# --- correctness ---------------------------------------------------------------------

def check(device, data, seed):
    """One float64 step of each implementation from the same weights on the same
    batch: the same loss, the same weight update, the same running statistics."""
    impls = build(device, "float64", data, seed)
    ix = np.random.default_rng(seed).integers(0, len(data[0]), 32)
    before = impls[0].parameters()
    results = []
    for impl in impls:
        loss = float(impl.step(ix).item())
        results.append((impl.name, loss, [a - b for a, b in zip(impl.parameters(), before)], impl.buffers()))
    ref_name, ref_loss, ref_update, ref_buffers = results[0]
    worst = 0.0
    for name, loss, update, buffers in results[1:]:
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-10, err_msg=f"loss: {name} vs {ref_name}")
        for i, (a, b) in enumerate(zip(update + buffers, ref_update + ref_buffers)):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12,
                                       err_msg=f"{name} vs {ref_name}: array {i} of updates+buffers")
            worst = max(worst, float(np.max(np.abs(a - b))))
    assert all(np.any(u != 0) for u in ref_update), "a parameter received no update"
    return ref_loss, worst


# --- timing --------------------------------------------------------------------------

@contextmanager
def thread_limit(n):
    """n threads for NumPy's BLAS (the engine and numpy columns) and for torch."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with backend.blas_threads(n):
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


def default_threads(batch, cores):
    """The engine's own default (backend.default_blas_threads): one BLAS thread up to
    batch 128, every usable core above. --threads 1 2 times both."""
    return backend.default_blas_threads(batch) or cores


def threads_for(batch, args):
    """The thread counts to time at this batch size (--threads, or the default)."""
    return sorted({default_threads(batch, CORES) if t == "auto" else int(t) for t in args.threads})


def table_header(names):
    head = ["batch", "threads", "steps/rep"]
    for name in names:
        head += [f"{name} min", f"{name} median"]
    head += ["engine/torch"] + (["engine/numpy"] if "numpy" in names else [])
    return ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]


def table_row(batch, threads, steps, rates, names, default):
    """rates: {name: [steps/s per repetition]}; `default`: whether `threads` is the default."""
    med = {n: statistics.median(r) for n, r in rates.items()}
    cells = [str(batch), f"{threads}{' (default)' if default else ''}", str(steps)]
    for name in names:
        cells += [f"{min(rates[name]):,.1f}", f"{med[name]:,.1f}"]
    cells += [f"{med['engine'] / med['torch']:.2f}"]
    if "numpy" in names:
        cells += [f"{med['engine'] / med['numpy']:.2f}"]
    return "| " + " | ".join(cells) + " |"


# the performance issue's targets for the CPU: (batch, baseline column, least engine/baseline ratio)
TARGETS = [(32, "torch", 3.0), (32, "numpy", 0.85), (8192, "torch", 1.5)]


def targets(medians):
    """Lines saying where the measured medians (default threads) stand against TARGETS."""
    lines = []
    for batch, baseline, wanted in TARGETS:
        if batch in medians and baseline in medians[batch]:
            ratio = medians[batch]["engine"] / medians[batch][baseline]
            verdict = "met" if ratio >= wanted else "**not met**"
            lines.append(f"- Target at batch {batch}: engine/{baseline} >= {wanted}: measured {ratio:.2f}, {verdict}")
    return lines + [""] if lines else []


# --- profile ---------------------------------------------------------------------------

def _function_classes(cls=Function):
    for sub in cls.__subclasses__():
        yield sub
        yield from _function_classes(sub)


@contextmanager
def op_timer():
    """Times every op's forward and backward (outermost call only: Mean calls Sum's).
    Yields a one-element list holding the seconds spent inside ops so far."""
    total, depth, patched = [0.0], [0], []

    def timed(fn):
        def wrapper(*a, **k):
            if depth[0]:
                return fn(*a, **k)
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                total[0] += time.perf_counter() - start
                depth[0] -= 1
        return wrapper

    for cls in _function_classes():
        for attr in ("forward", "backward"):
            if attr in vars(cls):
                patched.append((cls, attr, vars(cls)[attr]))
                setattr(cls, attr, timed(vars(cls)[attr]))
    try:
        yield total
    finally:
        for cls, attr, fn in patched:
            setattr(cls, attr, fn)


def phase_split(engine, batch, steps, n_examples, seed):
    """{phase: (µs per step, of which µs inside ops)} over `steps` instrumented engine steps."""
    phases, clock = {}, [0.0, 0.0]  # clock: wall time and time in ops at the last mark
    rng = np.random.default_rng(seed)
    with op_timer() as in_ops:
        def mark(phase):
            now, ops = time.perf_counter(), in_ops[0]
            total = phases.setdefault(phase, [0.0, 0.0])
            total[0] += now - clock[0]
            total[1] += ops - clock[1]
            clock[:] = time.perf_counter(), in_ops[0]  # leave mark's own time out

        for _ in range(steps):
            ix = rng.integers(0, n_examples, batch)
            clock[:] = time.perf_counter(), in_ops[0]
            engine.step(ix, mark)
    return {phase: (wall / steps * 1e6, ops / steps * 1e6) for phase, (wall, ops) in phases.items()}


def outside_array_work(engine, batch, steps, n_examples, seed):
    """µs per step of the array calls an engine step makes outside ops: the batch
    gather X[ix], Y[ix] and SGD's p -= lr * grad (here with lr 0, sparing the weights)."""
    params = [(p.data, p.grad) for p in engine.model.parameters()]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(steps):
        ix = rng.integers(0, n_examples, batch)
        engine.X[ix], engine.Y[ix]
        for p, g in params:
            p -= 0.0 * g
    return (time.perf_counter() - start) / steps * 1e6


def cprofile_top(engine, batch, steps, n_examples, seed, top):
    profiler = cProfile.Profile()
    rng = np.random.default_rng(seed)
    profiler.enable()
    for _ in range(steps):
        engine.step(rng.integers(0, n_examples, batch))
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    lines = [re.sub(r"\S*/(site-packages|lib/python[\d.]+)/", "", ln.replace(str(ROOT) + "/", ""))
             for ln in text.getvalue().splitlines() if ln.strip()]
    return lines[next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")):]


def profile(args, data):
    """At the smallest batch: an engine step's time phase by phase, split into array
    work (inside ops, plus the few array calls outside them) and Python bookkeeping
    (the rest), against the hand-written NumPy step; then cProfile's top functions.
    Plain, instrumented and NumPy blocks alternate three times; the median is kept."""
    batch, steps, n = min(args.sizes), args.profile_steps, len(data[0])
    engine, = build("cpu", args.dtype, data, args.seed, only="engine")
    numpy_impl, = build("cpu", args.dtype, data, args.seed, only="numpy")
    plain, fused, splits, outside = [], [], [], []
    with thread_limit(threads_for(batch, args)[0]):
        for impl in (engine, numpy_impl):
            time_block(impl, (args.seed, 0), 20, batch, n)  # warm-up
        for r in range(3):
            plain.append(time_block(engine, (args.seed, 1, r), steps, batch, n) / steps * 1e6)
            fused.append(time_block(numpy_impl, (args.seed, 1, r), steps, batch, n) / steps * 1e6)
            splits.append(phase_split(engine, batch, steps, n, (args.seed, 2, r)))
            outside.append(outside_array_work(engine, batch, steps, n, (args.seed, 3, r)))
        top = cprofile_top(engine, batch, steps, n, (args.seed, 4), args.profile_top)

    phases = sorted(splits, key=lambda split: sum(wall for wall, _ in split.values()))[1]
    plain, fused, outside = (statistics.median(x) for x in (plain, fused, outside))
    total, in_ops = (sum(v[i] for v in phases.values()) for i in (0, 1))
    array_work = min(in_ops + outside, total)
    lines = [f"Engine step at batch {batch}, {args.dtype}, {threads_for(batch, args)[0]} thread(s), "
             f"mean of {steps} instrumented steps (µs; the median of three such blocks):", "",
             "| phase | total | inside ops | outside ops |", "|---|---:|---:|---:|"]
    lines += [f"| {phase} | {wall:.0f} | {ops:.0f} | {wall - ops:.0f} |" for phase, (wall, ops) in phases.items()]
    lines += [f"| **step** | **{total:.0f}** | **{in_ops:.0f}** | **{total - in_ops:.0f}** |", "",
              f"- array work: {in_ops:.0f} µs inside ops + {outside:.0f} µs outside them (batch gather, SGD "
              f"arithmetic) = {array_work:.0f} µs = **{100 * array_work / total:.0f} %** of the step",
              f"- Python bookkeeping (graph recording, Tensor wrappers, input checks, module calls, backward "
              f"walk, gradient copies; and the op timers): {total - array_work:.0f} µs = "
              f"**{100 * (1 - array_work / total):.0f} %**",
              f"- the same engine step without instruments: {plain:.0f} µs; the hand-written NumPy step: "
              f"{fused:.0f} µs, so the engine takes {plain / fused:.2f}x as long, and its array work alone "
              f"is {array_work / fused:.2f}x the NumPy step",
              "- 'inside ops' is the time in every op's forward and backward: array calls, plus the few "
              "lines of Python in each op body",
              "", f"cProfile of {steps} engine steps, top {args.profile_top} by own time (cProfile sees "
              "Python functions, not NumPy operators, and slows Python calls):", "",
              "```", *top, "```"]
    return lines


# --- memory ----------------------------------------------------------------------------

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def memory(args, data):
    """Traced memory (tracemalloc: NumPy's arrays and Python's objects) of the engine
    and numpy columns: what a step holds at its peak and between steps, per batch size;
    then a long run at the smallest batch, where a graph that is not freed would show
    as growth."""
    n_examples = len(data[0])
    lines = ["Traced memory per step (tracemalloc, MiB; weights, gradients and every temporary "
             "the step allocates; not the data set):", "",
             "| batch | engine between steps | engine peak | numpy between steps | numpy peak |",
             "|---:|---:|---:|---:|---:|"]
    for batch in args.sizes:
        cells = []
        for name in ("engine", "numpy"):
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
    for name in ("engine", "numpy"):
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


# --- main ------------------------------------------------------------------------------------

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
                   help="BLAS threads: threadpoolctl's limit for NumPy's BLAS (engine and numpy columns), "
                        "torch.set_num_threads for torch. 'auto' (the default): 1 up to batch 128, "
                        "every usable core above. Several values "
                        "(e.g. --threads 1 2) time each size at each count, all interleaved, one table "
                        "row each")
    p.add_argument("--profile", action="store_true",
                   help="(CPU) at the smallest batch, split an engine step into array work and Python "
                        "bookkeeping, phase by phase, and list cProfile's top functions")
    p.add_argument("--profile-steps", type=positive_int, default=300, metavar="N",
                   help="steps measured by --profile (default: %(default)s)")
    p.add_argument("--profile-top", type=positive_int, default=15, metavar="N",
                   help="functions listed from cProfile (default: %(default)s)")
    p.add_argument("--memory", action="store_true",
                   help="(CPU) traced memory (tracemalloc) between steps and at a step's peak per batch "
                        "size, engine and numpy columns; and whether it stays flat over a long run")
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
    names = [cls.name for cls in implementations(args.device)]
    say("# tinygrad_wave training-step benchmark", "",
        f"Command (from the repository root): `{command}`", "", *machine_lines(), "",
        f"- Model: makemore part 5's hierarchical model, "
        f"{count_parameters(initial_weights(data[2], args.seed)[0]):,} parameters; "
        f"SGD lr {LR}; {args.dtype} on {args.device}",
        f"- Data: {data[3]}",
        "- Columns: **engine** is tinygrad_wave (model, F.cross_entropy, zero_grad, backward, "
        "optim.SGD); **torch** the same model in PyTorch eager, as makemore writes it; **numpy** a "
        "hand-written NumPy step with a fused closed-form backward and no Tensor objects (on cuda: "
        "no numpy column). A step samples a batch, runs forward, loss, backward and the SGD update; "
        "every column sees the same batches.")

    loss, worst = check(args.device, data, args.seed)
    say(f"- Check: one float64 step at batch 32 gives loss {loss:.6f} and the same weight update and "
        f"running statistics in every column (largest difference {worst:.1e})", "")
    load = other_load()
    if load is not None:
        say(f"- Other work before the run: {100 * load:.0f} % of the cores busy (1 s sample)", "")
        if load > 0.1:
            say("> **Warning:** the machine was not idle: other work shares the cores, and "
                "multi-threaded BLAS suffers most from it (two threads can turn ten times slower).", "")

    say("## Steps per second", "",
        f"{args.reps} repetitions per batch size; in each, every column times one block of steps "
        "(the same batches) after a warm-up, the columns taking turns. min is the slowest "
        "repetition, the ratios compare medians (above 1: the engine is faster).", "",
        *table_header(names))
    medians = {}  # batch -> {column: median steps/s} at the default thread count
    for batch in args.sizes:
        counts = threads_for(batch, args)
        columns = [(impl, threads) for threads in counts
                   for impl in build(args.device, args.dtype, data, args.seed)]
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
