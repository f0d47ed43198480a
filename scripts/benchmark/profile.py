"""Where an engine step's time goes: array work inside ops against Python bookkeeping."""
import cProfile
import io
import math
import pstats
import re
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tinygrad_wave.autograd import Function

from .steps import ROOT, build
from .timing import against_baseline, seconds_for, thread_limit, threads_for, time_block


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


def replay_split(args, data, batch, steps, n_examples, seed):
    """(µs per replayed step, of which µs inside ops). The jit step is built and captured
    inside op_timer, so that its replay calls the timed forward and backward methods."""
    with op_timer() as in_ops:
        replayed, = build("cpu", args.dtype, data, args.seed, only="jit")
        time_block(replayed, (seed, 0), 20, batch, n_examples)
        before = in_ops[0]
        wall = time_block(replayed, seed, steps, batch, n_examples)
        return wall / steps * 1e6, (in_ops[0] - before) / steps * 1e6


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


def inside_ops(step, batches):
    """(seconds a step, of which seconds inside ops) over step(*batch) for each batch, with every
    op's forward and backward timed: the time inside ops is the array work (and the few lines
    of Python in each op body), what no bookkeeping around the ops could take away."""
    with op_timer() as in_ops:
        seconds = seconds_for(step, batches)
    return seconds / len(batches), in_ops[0] / len(batches)


def inside_ops_line(step, batches, baseline_rates, baseline):
    """One line: the engine's step and the time inside its ops, against the baseline's whole step
    (the median of its timed blocks)."""
    seconds, in_ops = inside_ops(step, batches)
    other = 1 / statistics.median(baseline_rates)
    return (f"tinygrad_wave eager with its ops timed: {seconds * 1e3:.2f} ms a step, {in_ops * 1e3:.2f} ms of it "
            f"inside ops ({in_ops / other:.2f}x {baseline}'s whole step, {other * 1e3:.2f} ms)")


def step_matrix_products(step, batch):
    """The matrix products one eager step(*batch) makes, as (left shape, right shape) pairs:
    each linear's and matmul's forward product, and the one its backward makes for each input
    that needs a gradient, as Linear.backward and MatMul.backward make them."""
    from tinygrad_wave.functional import Linear
    from tinygrad_wave.ops.matmul import MatMul
    products, record = [], Function._record

    def noting(node, inputs):
        record(node, inputs)
        if not isinstance(node, (Linear, MatMul)):
            return
        a, b = inputs[0].shape, inputs[1].shape
        if isinstance(node, Linear):  # x's rows (m, k) times weight^T; weight (n, k)
            (m, k), n = (math.prod(a[:-1]), a[-1]), b[0]
            products.append(((m, k), (k, n)))
            grads = [((m, n), (n, k)), ((n, m), (m, k))]  # dx = g @ W, dW = g^T @ x
        else:
            if len(b) == 2:  # one GEMM on a's rows
                a = (math.prod(a[:-1]), a[-1])
            batch_dims, (m, k), n = np.broadcast_shapes(a[:-2], b[:-2]), a[-2:], b[-1]
            products.append(((*batch_dims, m, k), (*batch_dims, k, n)))
            grads = [((*batch_dims, m, n), (*batch_dims, n, k)), ((*batch_dims, k, m), (*batch_dims, m, n))]
        products.extend(product for product, needed in zip(grads, node.needs_grad) if needed)

    Function._record = noting
    try:
        step(*batch)
    finally:
        Function._record = record
    return products


def matrix_products_block(products, as_array, seed=0):
    """block(steps) -> seconds for `steps` rounds of the given products on random float32
    operands, made once and turned into a library's arrays by as_array (numpy.asarray,
    torch.from_numpy): what a step's matrix products alone cost in that library."""
    rng = np.random.default_rng(seed)
    operands = [(as_array(rng.standard_normal(a, dtype=np.float32)), as_array(rng.standard_normal(b, dtype=np.float32)))
                for a, b in products]

    def block(steps):
        start = time.perf_counter()
        for _ in range(steps):
            for left, right in operands:
                left @ right
        return time.perf_counter() - start
    return block


def add_gap_arguments(p, tiny_batch, columns):
    """The flags of bench_gpt.py and bench_makemore.py that split a step's gap to torch eager,
    --markdown, and --alone, one of `columns` by itself. `tiny_batch` says what --overhead's steps
    run on ("one window of 2 tokens")."""
    p.add_argument("--matrix-products", action="store_true",
                   help="add two columns: the matrix products of tinygrad_wave's eager step (every linear's and "
                        "matmul's, forward and backward), alone on operands of their shapes, in NumPy and in torch")
    p.add_argument("--overhead", action="store_true",
                   help=f"add a second table: both libraries' eager steps on {tiny_batch}, where the arrays hold "
                        "a few numbers and the time is what each library spends around its arithmetic")
    p.add_argument("--inside-ops", action="store_true",
                   help="then time --steps eager tinygrad_wave steps with every op timed, and print the time "
                        "inside ops against torch eager's whole step")
    p.add_argument("--markdown", type=Path, help="append the table to this file")
    names = ", ".join(f'"{name}"' for name in columns)
    p.add_argument("--alone", choices=list(columns), metavar="COLUMN",
                   help=f"time only this column ({names}: quote it in the shell), the only library stepping "
                        "in this process, and count its page faults; run it once per column. The script imports "
                        "both libraries, so torch's column runs under tinygrad_wave's allocator limits too "
                        "(tinygrad_wave/allocator.py; any MALLOC_* variable leaves glibc's defaults)")


def parse_gap_arguments(p, argv):
    """p's arguments, refusing --alone with a flag that needs the other columns."""
    args = p.parse_args(argv)
    together = [flag for flag in ("matrix_products", "overhead", "inside_ops", "markdown", "profile")
                if getattr(args, flag, None)]  # (--profile: bench_makemore.py's own)
    if args.alone and together:
        p.error(f"--alone times one column by itself: leave out --{together[0].replace('_', '-')}")
    return args


def gap_tables(rates, blocks, tiny):
    """The table of the `blocks` columns against torch eager's, and, where --overhead added the
    `tiny` columns, a second one of those against torch's own tiny step."""
    table = against_baseline({name: rates[name] for name in blocks}, "torch eager")
    if tiny:
        baseline = next(name for name in tiny if name.startswith("torch eager"))
        table += "\n\n" + against_baseline({name: rates[name] for name in tiny}, baseline)
    return table


def matrix_product_columns(step, batch):
    """Two more take_turns columns, the step's matrix products alone in NumPy (OpenBLAS) and in
    torch: how much of the gap between two whole steps their GEMMs make."""
    import torch
    products = step_matrix_products(step, batch)
    return {"its matrix products alone, NumPy": matrix_products_block(products, np.asarray),
            "its matrix products alone, torch": matrix_products_block(products, torch.from_numpy)}


def cprofile_top(run, top):
    """cProfile's table of the `top` functions by own time while run() runs, paths shortened."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
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
    engine, replayed, numpy_impl = (build("cpu", args.dtype, data, args.seed, only=name)[0]
                                    for name in ("engine", "jit", "numpy"))
    plain, fused, splits, outside, replays, replay_splits = [], [], [], [], [], []
    with thread_limit(threads_for(batch, args)[0]):
        for impl in (engine, replayed, numpy_impl):
            time_block(impl, (args.seed, 0), 20, batch, n)  # warm-up (and jit's capture)
        for r in range(3):
            plain.append(time_block(engine, (args.seed, 1, r), steps, batch, n) / steps * 1e6)
            replays.append(time_block(replayed, (args.seed, 1, r), steps, batch, n) / steps * 1e6)
            fused.append(time_block(numpy_impl, (args.seed, 1, r), steps, batch, n) / steps * 1e6)
            splits.append(phase_split(engine, batch, steps, n, (args.seed, 2, r)))
            replay_splits.append(replay_split(args, data, batch, steps, n, (args.seed, 2, r)))
            outside.append(outside_array_work(engine, batch, steps, n, (args.seed, 3, r)))
        top = cprofile_top(lambda: time_block(engine, (args.seed, 4), steps, batch, n), args.profile_top)

    phases = sorted(splits, key=lambda split: sum(wall for wall, _ in split.values()))[1]
    plain, fused, outside, replay = (statistics.median(x) for x in (plain, fused, outside, replays))
    replay_wall, replay_ops = sorted(replay_splits)[1]
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
              f"- the replayed step (jit column) without instruments: {replay:.0f} µs, {fused / replay:.2f}x the "
              f"NumPy step's speed; with its ops timed it takes {replay_wall:.0f} µs: {replay_ops:.0f} µs inside ops "
              f"+ {outside:.0f} µs of array work outside them, leaving {replay_wall - replay_ops - outside:.0f} µs "
              "of replay bookkeeping (argument and range checks, routing arrays, the gradient sums' Python, "
              "optimizer.step()'s Python; and the op timers)",
              f"- so the replay's ops and array work alone take {(replay_ops + outside) / fused:.2f}x the NumPy "
              "step's time: a replay that calls the engine's ops (array calls plus a few lines of Python each) "
              "can be no faster than that, however little bookkeeping is left around them",
              "", f"cProfile of {steps} engine steps, top {args.profile_top} by own time (cProfile sees "
              "Python functions, not NumPy operators, and slows Python calls):", "",
              "```", *top, "```"]
    return lines
