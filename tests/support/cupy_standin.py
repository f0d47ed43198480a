"""A strict stand-in for CuPy, for the tests only: the part of CuPy's interface that
tinygrad_wave uses, computed with NumPy, but with CuPy's boundaries between host and
device. conftest.py installs it as `cupy` for the "cuda-standin" variant of every test
that takes `device`, so that the CUDA code path runs on every CI run without a GPU.

What it proves: that every array the engine hands to a device op is a device array,
that nothing reaches NumPy without an explicit copy home, and that the engine copes with
the places where CuPy's answers differ from NumPy's. What it cannot: CuPy's own kernels
(their rounding, their dtype support), memory (nothing is allocated on a GPU) and speed
(a "device" op here is a NumPy op). scripts/gpu_check.sh runs the real thing.

The values live in a NumPy array (`ndarray._host`) that stands for device memory. Each
rule below mirrors CuPy 14 (cupy/_core/core.pyx, _kernel.pyx, _scalar.pyx,
_routines_indexing.pyx, cupyx/_scatter.py):

 1. Implicit conversion to NumPy raises TypeError: `__array__` refuses with CuPy's own
    message, so numpy.asarray(x), numpy.array(x) and any NumPy call that converts its
    argument fail. The ways home are x.get(), cupy.asnumpy(x), and the one-value
    conversions float(x), int(x), bool(x), x.item(), x.tolist(), repr/str/format(x),
    all of which CuPy allows (each is a copy to the host).
 2. A NumPy ufunc or function called on a device array dispatches to this module
    (CuPy's __array_ufunc__ and __array_function__): numpy.exp(x) is a device array. A
    function this module lacks raises TypeError, as one CuPy lacks does.
 3. A NumPy array (of any shape, 0-d too) handed to a device function or mixed with a
    device array in an operator raises TypeError "Unsupported type" (_preprocess_args
    takes device arrays, Python scalars and NumPy scalars, nothing else). The one
    exception CuPy makes: a 0-d NumPy array in a comparison is read as its number.
 4. Python and NumPy scalars mix with device arrays freely, by NumPy's promotion rules.
 5. Reductions and scalar indexing give 0-d device arrays, never NumPy scalars.
 6. There is no __index__: a device array cannot be a Python index, a range() bound or
    a list position without .item() (CuPy defines none).
 7. Indexing a device array with a NumPy integer array or a list is allowed (CuPy copies
    the index to the device); so is assigning a NumPy array through such an index. A
    NumPy array or a list assigned through a basic index (slices, ints) raises ValueError
    "non-scalar numpy.ndarray cannot be used for fill", as CuPy's fill does.
 8. Out-of-range entries of an integer index array wrap around their dim instead of
    raising IndexError (CuPy's documented difference from NumPy); a Python int index
    out of range still raises.
 9. cupy.asarray(host) copies: the device array never shares the host array's memory.
10. add.at(a, index, values) is the scatter-add (CuPy >= 12, which deprecates
    ndarray.scatter_add and so cupyx.scatter_add, its only caller, with a
    DeprecationWarning); it refuses dtypes without a CUDA atomicAdd (bool, int8/16, ...).
11. Array methods and module functions are the ones CuPy has, listed by name below;
    anything else (x.tofile, x.data as a buffer, cupy.random, streams) is an
    AttributeError, so a test that needs it needs a real GPU (`-m cuda`).
12. cuda.runtime.getDeviceCount() is 1 and cuda.Device().synchronize() does nothing.
"""
import builtins  # (this module's sum, any, ... are CuPy's, as in cupy's namespace)
import types

import numpy

IMPLICIT_CONVERSION = ("Implicit conversion to a NumPy array is not allowed. "
                       "Please use `.get()` to construct a NumPy array explicitly.")


def _strict(value):
    """`value` as NumPy computes with it: device arrays become their host arrays, and a
    NumPy array, which CuPy's kernels refuse (rule 3), raises."""
    if isinstance(value, ndarray):
        return value._host
    if isinstance(value, numpy.ndarray):
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        return type(value)(_strict(v) for v in value)
    return value


def _strict_call(host_function, args, kwargs):
    return _device(host_function(*_strict(args), **{k: _strict(v) for k, v in kwargs.items()}))


def _device(result):
    """NumPy's result as CuPy gives it: arrays on the device, scalars as 0-d arrays (rule 5)."""
    if isinstance(result, numpy.ndarray):
        return ndarray._of(result)
    if isinstance(result, numpy.generic):
        return ndarray._of(numpy.asarray(result))
    if isinstance(result, (list, tuple)):
        return type(result)(_device(r) for r in result)
    return result


# --- indexing (rules 7 and 8) ----------------------------------------------------------------

def _index(index, shape):
    """`index` as NumPy takes it: device and NumPy index arrays on the "device", lists as
    arrays, and out-of-range entries of integer arrays wrapped around their dim."""
    parts = list(index) if isinstance(index, tuple) else [index]
    for i, part in enumerate(parts):
        if isinstance(part, ndarray):
            parts[i] = part._host
        elif isinstance(part, list):
            parts[i] = numpy.asarray(part) if part else numpy.zeros(0, numpy.int32)
    spans = [0 if p is None or p is Ellipsis else p.ndim if _is_mask(p) else 1 for p in parts]
    dim = 0
    for i, (part, span) in enumerate(zip(parts, spans)):
        if part is Ellipsis:
            dim += len(shape) - builtins.sum(spans)
        elif isinstance(part, numpy.ndarray) and part.dtype.kind in "iu" and dim < len(shape) and shape[dim]:
            parts[i] = part % shape[dim]
        dim += span
    return tuple(parts)


def _is_mask(part):
    return isinstance(part, numpy.ndarray) and part.dtype.kind == "b"


def _is_advanced(index):
    return builtins.any(isinstance(p, numpy.ndarray) for p in index)


# --- the array ---------------------------------------------------------------------------------

class ndarray:
    """A device array: its values in `_host`, which only this module reads."""

    __slots__ = ("_host",)
    __array_priority__ = 100
    __hash__ = None  # as NumPy's and CuPy's arrays: == compares elements

    def __init__(self, shape, dtype=float):
        self._host = numpy.empty(shape, dtype)

    @classmethod
    def _of(cls, host):
        array = cls.__new__(cls)
        array._host = host
        return array

    # rule 1: the ways home, and the refusal of every other
    def get(self, stream=None, order="C", out=None, blocking=True):
        return numpy.array(self._host, order=order)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT_CONVERSION)

    def item(self):
        if self._host.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._host.item()

    def tolist(self):
        return self._host.tolist()

    def __int__(self):
        return int(self.get())

    def __float__(self):
        return float(self.get())

    def __complex__(self):
        return complex(self.get())

    def __bool__(self):
        if self._host.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        return bool(self._host.size and self._host.reshape(-1)[0])

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, spec):
        return format(self.get(), spec)

    def __len__(self):
        if not self._host.ndim:
            raise TypeError("len() of unsized object")
        return len(self._host)

    def __iter__(self):
        if not self._host.ndim:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._host)))

    @property
    def __cuda_array_interface__(self):
        """What backend.is_array recognises a CuPy array by."""
        host = self._host
        return {"shape": host.shape, "typestr": host.dtype.str, "version": 3,
                "data": (host.__array_interface__["data"][0], False),
                "strides": None if host.flags.c_contiguous else host.strides}

    # rule 2: NumPy's functions dispatch here
    def __array_ufunc__(self, host_ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            (kwargs["out"],) = kwargs["out"]
        function = globals().get(host_ufunc.__name__)
        if not isinstance(function, ufunc) or not hasattr(function, "__call__" if method == "__call__" else method):
            return NotImplemented
        if host_ufunc.__name__ in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
            inputs = tuple(_zero_d_as_number(x) for x in inputs)  # rule 3's exception
        return (function if method == "__call__" else getattr(function, method))(*inputs, **kwargs)

    def __array_function__(self, host_function, types, args, kwargs):
        function = globals().get(host_function.__name__) if host_function.__module__ == "numpy" else None
        if function is None or not callable(function):
            return NotImplemented
        return function(*args, **kwargs)

    # rules 7 and 8
    def __getitem__(self, index):
        index = _index(index, self._host.shape)
        host = self._host[index]
        if isinstance(host, numpy.generic):  # an all-integer index: CuPy gives a 0-d view, not a copy
            host = self._host[(*index, ...)]
        return _device(host)

    def __setitem__(self, index, value):
        index = _index(index, self._host.shape)
        if not isinstance(value, ndarray) and numpy.ndim(value) and not _is_advanced(index):
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._host[index] = value._host if isinstance(value, ndarray) else value


def _zero_d_as_number(x):
    return x.item() if isinstance(x, numpy.ndarray) and x.ndim == 0 else x


def _attribute(name):
    return property(lambda self: _device(getattr(self._host, name)), doc=f"ndarray.{name}")


def _method(name):
    def method(self, *args, **kwargs):
        return _strict_call(getattr(self._host, name), args, kwargs)
    method.__name__ = method.__qualname__ = name
    return method


# rule 11: what cupy.ndarray has (core.pyx), and nothing it lacks
for _name in "shape dtype ndim size strides itemsize nbytes flags base T real imag".split():
    setattr(ndarray, _name, _attribute(_name))
for _name in ("all any argmax argmin argsort astype clip copy cumsum cumprod diagonal dot fill flatten max mean "
              "min nonzero prod ravel repeat reshape round sort squeeze std sum swapaxes take transpose var view"
              ).split():
    setattr(ndarray, _name, _method(_name))


# --- ufuncs and operators (rules 3 and 4) ------------------------------------------------------

class ufunc:
    """A CuPy ufunc: NumPy's, on device arrays only."""

    def __init__(self, host_ufunc):
        self._host_ufunc = host_ufunc
        self.__name__ = host_ufunc.__name__
        self.nin, self.nout = host_ufunc.nin, host_ufunc.nout

    def __call__(self, *args, **kwargs):
        return _strict_call(self._host_ufunc, args, kwargs)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


class _AddUfunc(ufunc):
    ATOMIC_ADD_DTYPES = tuple(numpy.dtype(t) for t in (numpy.int32, numpy.int64, numpy.uint32, numpy.uint64,
                                                       numpy.float16, numpy.float32, numpy.float64))

    def at(self, a, indices, b):
        """a[indices] += b with repeated indices accumulating (rule 10)."""
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        index = _index(indices, a._host.shape)
        values = b._host if isinstance(b, ndarray) else b if _is_advanced(index) else _strict(b)
        if numpy.result_type(values, a._host.dtype) not in self.ATOMIC_ADD_DTYPES:
            raise TypeError("cupy.add.at only supports int32, int64, float16, float32, float64, uint32, uint64 "
                            "as data type")
        numpy.add.at(a._host, index, numpy.asarray(values, a._host.dtype))


_UFUNCS = ("add subtract multiply divide true_divide floor_divide power remainder negative positive absolute sign "
           "exp exp2 expm1 log log2 log10 log1p sqrt square reciprocal tanh sin cos tan arctan sinh cosh maximum "
           "minimum fmax fmin greater greater_equal less less_equal equal not_equal logical_and logical_or "
           "logical_not logical_xor bitwise_and bitwise_or bitwise_xor invert isfinite isnan isinf matmul floor "
           "ceil rint logaddexp").split()
for _name in _UFUNCS:
    globals()[_name] = (_AddUfunc if _name == "add" else ufunc)(getattr(numpy, _name))
abs = absolute  # noqa: A001 (cupy.abs, as numpy.abs)


def _operator(ufunc_name, reflected=False):
    def operator(self, other):
        if getattr(other, "__array_ufunc__", 0) is None:  # other handles the op itself (a Tensor does)
            return NotImplemented
        function = globals()[ufunc_name]
        return function(other, self) if reflected else function(self, other)
    return operator


def _in_place(ufunc_name):
    def operator(self, other):
        if getattr(other, "__array_ufunc__", 0) is None:
            return NotImplemented
        globals()[ufunc_name](self, other, out=self)
        return self
    return operator


def _comparison(ufunc_name, default):
    def operator(self, other):
        if getattr(other, "__array_ufunc__", 0) is None:
            return NotImplemented
        if default is not None and not isinstance(other, ndarray) and (
                other is None or type(other).__eq__ is object.__eq__):
            return (ones if default else zeros)(self._host.shape, bool)  # (CuPy: x == None is all False)
        return globals()[ufunc_name](self, _zero_d_as_number(other))
    return operator


for _dunder, _name in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
                       ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
                       ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")):
    setattr(ndarray, f"__{_dunder}__", _operator(_name))
    setattr(ndarray, f"__r{_dunder}__", _operator(_name, reflected=True))
    setattr(ndarray, f"__i{_dunder}__", _in_place(_name))
for _dunder, _name, _default in (("lt", "less", None), ("le", "less_equal", None), ("gt", "greater", None),
                                 ("ge", "greater_equal", None), ("eq", "equal", False), ("ne", "not_equal", True)):
    setattr(ndarray, f"__{_dunder}__", _comparison(_name, _default))
ndarray.__neg__ = lambda self: negative(self)  # noqa: F821 (made in the loop above)
ndarray.__pos__ = lambda self: positive(self)  # noqa: F821
ndarray.__abs__ = lambda self: absolute(self)  # noqa: F821
ndarray.__invert__ = lambda self: invert(self)  # noqa: F821


# --- module functions (rule 11) ------------------------------------------------------------------

def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array from host data: a copy (rule 9), so a later change on the host stays there."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == numpy.dtype(dtype) else a.astype(dtype)
    return ndarray._of(numpy.array(_host_copy(a), dtype=dtype, order=order))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return ndarray._of(numpy.array(obj._host, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    return ndarray._of(numpy.array(_host_copy(obj), dtype=dtype, order=order, ndmin=ndmin))


def _host_copy(data):
    """Nested sequences may hold device arrays (cupy.array([x, y]) takes them): unwrap those."""
    if isinstance(data, ndarray):
        return data._host
    if isinstance(data, (list, tuple)):
        return [_host_copy(d) for d in data]
    return data


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    return a.get(order=order) if isinstance(a, ndarray) else numpy.asarray(a, order=order)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """CuPy's allclose is isclose(...).all(): a 0-d device array, not a Python bool."""
    return isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan).all()  # noqa: F821


def _function(name):
    host_function = getattr(numpy, name)

    def function(*args, **kwargs):
        return _strict_call(host_function, args, kwargs)
    function.__name__ = function.__qualname__ = name
    return function


for _name in ("zeros ones empty full arange eye linspace zeros_like ones_like empty_like full_like "
              "where concatenate stack split swapaxes expand_dims broadcast_to broadcast_arrays take_along_axis take "
              "flatnonzero nonzero nan_to_num may_share_memory histogram isclose array_equal sum mean var std max min "
              "amax amin argmax argmin all any prod cumsum clip reshape transpose squeeze ravel moveaxis dot einsum "
              "outer count_nonzero unique sort argsort round tile repeat diag tril triu pad searchsorted bincount "
              "atleast_1d atleast_2d roll flip copyto").split():
    globals()[_name] = _function(_name)

# the dtypes and constants are NumPy's own, as in CuPy
for _name in ("dtype bool_ int8 int16 int32 int64 uint8 uint32 uint64 float16 float32 float64 "
              "result_type can_cast iinfo finfo inf nan pi e newaxis").split():
    globals()[_name] = getattr(numpy, _name)


# --- the CUDA runtime (rule 12) ------------------------------------------------------------------

class CUDARuntimeError(RuntimeError):
    pass


class Device:
    def __init__(self, device=None):
        self.id = device or 0

    def synchronize(self):
        pass  # every "kernel" here has finished when it returns


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, CUDARuntimeError=CUDARuntimeError),
    Device=Device)

