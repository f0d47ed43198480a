"""The backend seam: the one file that imports numpy or cupy.

Every other module asks `namespace(device)` for the array module of a device
("cpu" -> numpy, "cuda" -> cupy) and does its array math through that module,
so that the same op code runs on both. The few things numpy and cupy spell
differently (host copies, file I/O, BLAS threads) live here too.
"""
import json
import math
import os
import zipfile
from contextlib import contextmanager

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
    rank = {"b": 0, "u": 1, "i": 1, "f": 2}
    ka, kb = rank[a.dtype.kind], rank[b.dtype.kind]
    if ka != kb:
        return a.dtype if ka > kb else b.dtype
    if (a.ndim == 0) != (b.ndim == 0):
        return b.dtype if a.ndim == 0 else a.dtype
    return numpy.result_type(a.dtype, b.dtype)


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


# --- sampling ------------------------------------------------------------------

def softmax_on_host(logits, temperature):
    """softmax(logits / temperature) in float64 on the host, for sampling. The largest
    logit is subtracted first, so every exponent is <= 0: nothing overflows, however
    small the temperature."""
    z = to_host(logits).astype(numpy.float64)
    p = numpy.exp((z - z.max()) / temperature)
    return p / p.sum()


# --- files and threads -------------------------------------------------------

def atomic_write(path, write):
    """Call write(f) on a binary file beside `path`, then rename it over `path`: a
    crash or a kill mid-write leaves the old file whole, never a half-written one."""
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as f:
            write(f)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):  # the write failed: no debris
            os.unlink(partial)


def save_arrays(path, arrays, meta):
    """An .npz of host arrays plus a JSON string, loadable without pickle, written atomically."""
    host = {name: to_host(a) for name, a in arrays.items()}
    atomic_write(path, lambda f: numpy.savez(f, __meta__=numpy.array(json.dumps(meta)), **host))


def load_meta(path):
    """The JSON string of an .npz written by save_arrays, without reading its arrays."""
    with numpy.load(path, allow_pickle=False) as f:
        return json.loads(str(f["__meta__"]))


def load_arrays(path, shapes):
    """The arrays named in `shapes` (name -> shape) from an .npz written by save_arrays.
    Each member's header is checked against its shape before its data is read, and
    other members are never read: a damaged or hostile file cannot make us allocate."""
    read_header = {(1, 0): numpy.lib.format.read_array_header_1_0, (2, 0): numpy.lib.format.read_array_header_2_0}
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for name, shape in shapes.items():
            with archive.open(f"{name}.npy") as member:
                version = numpy.lib.format.read_magic(member)
                if version not in read_header:
                    raise ValueError(f"{name} is in .npy format {version}, which save_arrays never writes")
                stored = read_header[version](member)[0]
            if stored != tuple(shape):
                raise ValueError(f"{name} has shape {stored}, expected {tuple(shape)}")
            with archive.open(f"{name}.npy") as member:
                arrays[name] = numpy.lib.format.read_array(member, allow_pickle=False)
    return arrays


def all_finite(array):
    return bool(namespace(device_of(array)).isfinite(array).all())


def default_blas_threads(batch_size):
    """1 for batches up to 128, else None (every core). Measured on 2 cores
    (docs/BENCHMARKS.md): at small batches a second thread buys little, and a
    two-thread BLAS slows tenfold when another process holds a core; from
    batch 512 up two threads are ~40 % faster."""
    return 1 if batch_size <= 128 else None


@contextmanager
def blas_threads(n):
    """Limit the BLAS to n threads inside the block (None: leave it alone).
    One thread is faster for the small matrices of batch-32 training."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=n, user_api="blas"):
        yield
