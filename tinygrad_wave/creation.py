"""New tensors with torch's names: tensor, zeros, ones, their *_like forms, arange and
linspace (the random ones are in random.py)."""
from . import backend
from .methods import _shape
from .tensor import Tensor


def zeros(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).zeros(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def ones(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).ones(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def zeros_like(t, requires_grad=False, dtype=None):
    return zeros(t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype, device=t.device)


def ones_like(t, requires_grad=False, dtype=None):
    return ones(t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype, device=t.device)


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new tensor holding a copy of `data` (numbers, nested lists, an array or a tensor)."""
    return Tensor(data, requires_grad, dtype, device)


def arange(start, end=None, step=1, *, dtype=None, device="cpu", requires_grad=False):
    """start, start + step, ... below end (arange(n): 0 .. n-1). int64 for integer
    arguments, float32 when any is a float, as in torch."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(from {start} to {end} by {step})")
    if dtype is None:
        dtype = "int64" if all(isinstance(v, int) for v in (start, end, step)) else backend.DEFAULT_FLOAT
    values = backend.namespace(device).arange(start, end, step, dtype=backend.as_dtype(dtype))
    return Tensor(values, requires_grad, device=device)


def linspace(start, end, steps, *, dtype=None, device="cpu", requires_grad=False):
    """`steps` evenly spaced values from start to end inclusive (float32 by default).
    As torch computes them: start + i * step for the first half, end - (steps - 1 - i) * step
    for the second, so both ends are exact."""
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"linspace: steps must be an int, not {type(steps).__name__}")
    if steps < 0:
        raise RuntimeError("linspace: number of steps must be non-negative")
    dtype = backend.as_dtype(dtype or backend.DEFAULT_FLOAT)
    xp = backend.namespace(device)
    step = (dtype.type(end) - dtype.type(start)) / max(steps - 1, 1)
    i = xp.arange(steps, dtype=dtype)
    first_half = i < max(steps // 2, 1)  # (one step is [start], as in torch)
    values = xp.where(first_half, dtype.type(start) + step * i, dtype.type(end) - step * (steps - 1 - i))
    return Tensor(values.astype(dtype), requires_grad, device=device)
