"""The backend seam: the one file that imports cupy.

Every module that runs on both devices asks `namespace(device)` for the array module of a device
("cpu" -> numpy, "cuda" -> cupy) and does its array math through that module,
so that the same op code runs on both. What both devices need from the
array modules lives here too: host copies, torch's dtype rules and print
format, index bounds CuPy does not check, the embedding's scatter-add.

The import rule this seam serves: code that runs on both devices takes its
array module from `namespace`; host-only code (files, random draws, the
teaching tools' statistics) may `import numpy as np` itself.
"""
import functools
import math

import numpy

DEVICES = ("cpu", "cuda")
DEFAULT_FLOAT = numpy.float32
ONE_HOT_LIMIT = 1 << 24  # elements of the one-hot matrix scatter_add may build (64 MiB in float32)

_cupy = None


def _load_cupy():
    """Import cupy on first use, so that a CPU-only install never needs it."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as e:
            raise RuntimeError(
                'device="cuda" needs CuPy, which is not installed: '
                "pip install cupy-cuda13x (or the build matching your CUDA)") from e
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as e:
            raise RuntimeError(f'device="cuda" needs a CUDA GPU, and CuPy found none ({e})') from e
        if count == 0:
            raise RuntimeError('device="cuda" needs a CUDA GPU, and CuPy found none')
        _cupy = cupy
    return _cupy


def gpu_count():
    """How many CUDA GPUs CuPy sees: 0 without CuPy, a driver or a device."""
    try:
        return _load_cupy().cuda.runtime.getDeviceCount()
    except RuntimeError:
        return 0


def synchronize():
    """Wait until the GPU has finished the work queued on it."""
    _load_cupy().cuda.Device().synchronize()


def check_device(device):
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


def device_and_dtype(args, device=None, dtype=None):
    """The positional arguments of to() read as torch reads them: to("cuda"), to(torch.float64),
    to("cuda", torch.float64). A string that names no dtype is a device (an unknown one is
    refused as such by check_device)."""
    for arg in args:
        if isinstance(arg, str) and not _names_a_dtype(arg):
            device = arg
        else:
            dtype = arg
    return device, dtype


def _names_a_dtype(name):
    try:
        numpy.dtype(name)
    except TypeError:
        return False
    return True


def namespace(device):
    """The array module for `device`: numpy for "cpu", cupy for "cuda"."""
    if device == "cpu":
        return numpy
    check_device(device)
    return _load_cupy()


def device_of(array):
    return "cpu" if isinstance(array, (numpy.ndarray, numpy.generic)) else "cuda"


def is_array(value):
    """A numpy or cupy array (cupy's announce themselves by their CUDA array interface)."""
    return isinstance(value, numpy.ndarray) or hasattr(value, "__cuda_array_interface__")


def as_dtype(dtype):
    """numpy dtype from a numpy dtype, a type or a name such as "float32"."""
    return None if dtype is None else numpy.dtype(dtype)


def is_floating(dtype):
    return numpy.dtype(dtype).kind == "f"


def is_integer(dtype):
    return numpy.dtype(dtype).kind in "iu"  # (dtype.kind: faster than numpy.issubdtype)


def result_type(a, b):
    """The dtype of an elementwise op on arrays a and b, by torch's rules rather than NumPy's:
    a float beats an integer, an integer beats a bool, and within a kind the wider dtype
    wins -- except that a 0-d array does not widen one with dims (float32 * a 0-d float64
    stays float32, as a Python number would)."""
    if _KIND_RANK[a.dtype.kind] == _KIND_RANK[b.dtype.kind] and (a.ndim == 0) != (b.ndim == 0):
        return b.dtype if a.ndim == 0 else a.dtype
    return _promoted(a.dtype, b.dtype)


_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _promoted(a, b):
    """torch's result type of two dtypes (of arrays with dims): a float beats an integer, an
    integer beats a bool, and within a kind the wider wins."""
    ka, kb = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    if ka != kb:
        return a if ka > kb else b
    return numpy.result_type(a, b)


def common_dtype(arrays):
    """result_type over several arrays with dims (cat's inputs), left to right: float32 for an
    int64 and a float32 array, where NumPy's concatenate would make float64."""
    return functools.reduce(_promoted, [a.dtype for a in arrays])


def format_array(array, indent):
    """An array's values as torch prints them: floats with 4 decimals (or in e-notation
    when they span many orders of magnitude), `1.` for whole floats, rows aligned."""
    host = to_host(array)
    whole = host.dtype.kind == "f" and host.size and bool(numpy.all(numpy.isfinite(host) & (host == numpy.round(host))))
    floatmode = "unique" if whole or host.dtype.kind != "f" else "fixed"
    return numpy.array2string(host, precision=4, floatmode=floatmode, separator=", ", prefix=" " * indent,
                              threshold=1000, edgeitems=3, max_line_width=80)


def to_array(data, dtype=None, device="cpu"):
    """An array on `device` from array-like data, with torch's dtype rules:
    Python floats (and lists of them) become float32, Python ints int64,
    and an existing array keeps its dtype unless `dtype` is given."""
    xp = namespace(device)
    if is_array(data):
        if device_of(data) != device:
            data = to_host(data) if device == "cpu" else xp.asarray(data)
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    host = numpy.asarray(data)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} data ({host.dtype}): "
                        "give numbers, nested lists of numbers or an array")
    if dtype is None:
        if host.dtype == numpy.float64 and not isinstance(data, numpy.generic):
            dtype = DEFAULT_FLOAT  # a Python float or list of floats
        elif is_integer(host.dtype):
            dtype = numpy.int64
    return xp.asarray(host, dtype=dtype)


def check_in_bounds(index, shape):
    """Raise NumPy's IndexError for an entry of a CuPy integer index array outside its dim.
    CuPy wraps such an entry around instead (a documented difference from NumPy): x[[5]]
    of 3 rows would quietly read row 2 on the GPU, where the CPU and torch refuse it."""
    parts = index if isinstance(index, tuple) else (index,)
    spans = [0 if p is None or p is Ellipsis else p.ndim if is_array(p) and p.dtype.kind == "b" else 1 for p in parts]
    dim = 0
    for part, span in zip(parts, spans):
        if part is Ellipsis:
            dim += len(shape) - sum(spans)
        elif is_array(part) and device_of(part) == "cuda" and is_integer(part.dtype) and part.size and dim < len(shape):
            low, high = int(part.min()), int(part.max())
            if low < -shape[dim] or high >= shape[dim]:
                raise IndexError(f"index {high if high >= shape[dim] else low} is out of bounds "
                                 f"for axis {dim} with size {shape[dim]}")
        dim += span


def to_host(array):
    """A numpy copy of an array on any device."""
    return array.get() if device_of(array) == "cuda" else numpy.array(array)


def in_range(a, n):
    """Whether every value of integer array `a` lies in [0, n) (NumPy would read -1 as the last row)."""
    return a.size == 0 or 0 <= int(a.min()) and int(a.max()) < n


def scatter_add(xp, shape, index, values):
    """An array of zeros of `shape` with out[index] += values, repeated indices
    accumulating (the backward of the gather out = x[index]).

    For a single integer array on the CPU (the embedding case) this is a
    one-hot matmul: onehot(index).T @ values sums the rows of `values` that
    share an index, and one BLAS call is several times faster than
    numpy.add.at. Other indices, and one-hot matrices too big to be worth
    it, go through add.at, which CuPy (>= 12) has too: cupyx.scatter_add,
    the older spelling, warns that it is deprecated.
    """
    rows = shape[0] if shape else 0
    if (xp is numpy and is_array(index) and index.ndim >= 1 and is_integer(index.dtype)
            and index.size * rows <= ONE_HOT_LIMIT):
        flat = index.reshape(-1).astype(numpy.int64, copy=False) % rows  # -1: the last row, as in the gather
        onehot = (flat[:, None] == numpy.arange(rows)).astype(values.dtype)
        return (onehot.T @ values.reshape(flat.size, -1 if flat.size else math.prod(shape[1:]))).reshape(shape)
    out = xp.zeros(shape, values.dtype)
    xp.add.at(out, index, values)
    return out


def all_finite(array):
    return bool(namespace(device_of(array)).isfinite(array).all())
