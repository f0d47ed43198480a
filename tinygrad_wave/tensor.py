"""Tensor: the user's object. An array (`data`), its gradient (`grad`), the
node that made it (`grad_fn`, None for a leaf), and operator sugar that
turns Python expressions into ops. Backward itself lives in autograd.py.
"""
import math
import weakref
from collections import namedtuple

from . import autograd, backend, ops
from .autograd import is_grad_enabled, walk

# what .max(dim) and .min(dim) return, as torch.return_types.max does
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


class Tensor:
    __slots__ = ("_data", "_grad", "grad_fn", "_requires_grad", "device", "_version", "__weakref__")
    __array_ufunc__ = None  # `ndarray + Tensor` must call Tensor.__radd__, not loop over elements
    __hash__ = object.__hash__  # == compares elements (below), yet a tensor can still key a dict, as in torch

    def __init__(self, data, requires_grad=False, dtype=None, device="cpu"):
        if isinstance(data, Tensor):
            data = data.data
        array = backend.to_array(data, backend.as_dtype(dtype), backend.check_device(device))
        # a copy, as torch.tensor() makes: training must not change the caller's array
        self._data = array.copy() if array is data else array
        if array is data and autograd._recorder is not None:  # (a captured step: jit.py follows the copy)
            autograd._recorder.copied(data, self._data)
        self.device = device
        self._grad = self.grad_fn = None
        self._version = [0]
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _from_op(cls, data, device, node, version=None):
        """Wrap an op's output without re-checking what the op already knows."""
        t = cls.__new__(cls)
        t._data, t.device, t._grad, t.grad_fn = data, device, None, node
        t._version = version or [0]
        t._requires_grad = node is not None
        return t

    # --- attributes ---------------------------------------------------------------

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):
        """Takes the new array's dtype, as torch's .data assignment does; the shape must stay."""
        if autograd._recorder is not None:
            autograd._recorder.changed(self, ".data assignment")
        if array is not self._data:  # (`t.data -= x` changed the array in place: nothing to check)
            if isinstance(array, Tensor):
                array = array.data
            array = backend.to_array(array, device=self.device)
            if array.shape != self.shape:
                raise ValueError(f"cannot assign data of shape {tuple(array.shape)} "
                                 f"to a tensor of shape {self.shape}")
            if self._requires_grad and not backend.is_floating(array.dtype):
                raise TypeError(f"cannot assign {array.dtype} data to a tensor that requires grad")
            self._data = array
        self._version[0] += 1

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, array):
        if autograd._recorder is not None:
            autograd._recorder.grad_set(self, array)
        if array is not None:
            array = backend.to_array(array.data if isinstance(array, Tensor) else array, device=self.device)
            if array.shape != self.shape:
                raise ValueError(f"assigned grad of shape {tuple(array.shape)} to a tensor of shape {self.shape}")
            if array.dtype != self.dtype:  # as torch: backward would add the two dtypes into a third
                raise TypeError(f"assigned grad of dtype {array.dtype} to a tensor of dtype {self.dtype}")
        self._grad = array

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be changed on a leaf tensor; "
                               "use .detach() for a tensor outside the graph")
        if value and not backend.is_floating(self.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, not {self.dtype}")
        self._requires_grad = bool(value)

    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    is_leaf = property(lambda self: self.grad_fn is None)
    xp = property(lambda self: backend.namespace(self.device))

    def numel(self):
        return self._data.size

    nelement = numel  # the name makemore uses

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __len__(self):
        return self.shape[0]

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of {self.numel()} elements is ambiguous: "
                               "use .any() or .all()")
        return bool(self.item())

    def __repr__(self):
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn else (
            ", requires_grad=True" if self.requires_grad else "")
        device = f", device={self.device!r}" if self.device != "cpu" else ""
        return f"Tensor({backend.to_host(self._data)!r}{device}{extra})"

    # --- leaving and moving ---------------------------------------------------------

    # (a captured step must not read values: jit.py refuses what Python could branch on)
    def numpy(self):
        """A host NumPy copy of the data."""
        if autograd._recorder is not None:
            autograd._recorder.read(self, ".numpy()")
        return backend.to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t): the data, as a host array."""
        if autograd._recorder is not None:
            autograd._recorder.read(self, "np.asarray(tensor)")
        host = backend.to_host(self._data)
        return host if dtype is None else host.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor of one element, not shape {self.shape}")
        if autograd._recorder is not None:
            autograd._recorder.read(self, ".item()")
        return self._data.reshape(()).item()

    def tolist(self):
        if autograd._recorder is not None:
            autograd._recorder.read(self, ".tolist()")
        return backend.to_host(self._data).tolist()

    def detach(self):
        """The same data (and version counter), outside the graph."""
        return Tensor._from_op(self._data, self.device, None, self._version)

    def to(self, device=None, dtype=None):
        """A copy on another device or of another dtype (self when nothing changes),
        in the graph: its gradient flows back to this tensor. An integer or bool
        dtype leaves the graph (no gradient flows through a rounding)."""
        device = backend.check_device(device or self.device)
        dtype = backend.as_dtype(dtype) or self.dtype
        if device == self.device and dtype == self.dtype:
            return self
        if not backend.is_floating(dtype):
            return Tensor._from_op(backend.to_array(self._data, dtype, device), device, None)
        return ops.To.apply(self, dtype=dtype, device=device)

    def float(self): return self.to(dtype="float32")
    def double(self): return self.to(dtype="float64")
    def long(self): return self.to(dtype="int64")

    def _converted(self, device=None, dtype=None):
        """(data, grad) as Module.to would set them, computed before anything changes."""
        dtype = backend.as_dtype(dtype)
        if dtype is not None and self.requires_grad and not backend.is_floating(dtype):
            raise ValueError(f"cannot cast a tensor that requires grad to {dtype}: it needs a float dtype")
        device = backend.check_device(device or self.device)
        data = backend.to_array(self._data, dtype, device)
        grad = None if self._grad is None else backend.to_array(self._grad, data.dtype, device)
        return data, grad

    # --- gradients -------------------------------------------------------------------

    def backward(self, grad=None, retain_graph=False):
        """Fill .grad of every leaf that this tensor depends on with d self / d leaf,
        weighted by `grad` (d loss / d self; 1 for a one-element tensor). With
        retain_graph the graph is kept for another backward, which adds to .grad again."""
        for _ in walk(self, self._root_grad(grad), retain_graph):
            pass

    def _root_grad(self, grad):
        """d loss / d self as an array on self's device, checked; ones for a one-element tensor.
        (the start of backward, and of a backward taken one step at a time)"""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input of it has requires_grad=True")
        if grad is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward() on a non-scalar tensor of shape {self.shape} "
                                   "needs grad=, an array of that shape")
            grad = self.xp.ones(self._data.shape, self.dtype)
        else:
            grad = backend.to_array(grad.data if isinstance(grad, Tensor) else grad,
                                    self.dtype, self.device)
            if grad.shape != self._data.shape:
                raise ValueError(f"grad of shape {tuple(grad.shape)} does not match "
                                 f"the tensor's shape {self.shape}")
        return grad

    def retain_grad(self):
        """Keep d loss / d self in .grad after backward, though self is not a leaf
        (a leaf keeps it anyway)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("retain_grad() on a tensor that does not require grad")
            return
        self.grad_fn.retained = weakref.ref(self)

    def _accumulate(self, grad):
        """Sum the gradients of every backward call into .grad, as torch does."""
        if grad.dtype != self.dtype:
            grad = grad.astype(self.dtype)
        self._grad = grad if self._grad is None else self._grad + grad

    # --- operator sugar ------------------------------------------------------------------

    def _lift(self, other):
        """`other` as a Tensor on this device; Python numbers take this tensor's
        float dtype so that `x * 0.1` stays float32 (or float64)."""
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(f"tensors on different devices: {self.device} and {other.device}")
            return other
        floating = isinstance(other, (int, float)) and backend.is_floating(self.dtype)
        return Tensor(other, dtype=self.dtype if floating else None, device=self.device)

    def __add__(self, other): return ops.Add.apply(self, self._lift(other))
    def __radd__(self, other): return ops.Add.apply(self._lift(other), self)
    def __sub__(self, other): return ops.Sub.apply(self, self._lift(other))
    def __rsub__(self, other): return ops.Sub.apply(self._lift(other), self)
    def __mul__(self, other): return ops.Mul.apply(self, self._lift(other))
    def __rmul__(self, other): return ops.Mul.apply(self._lift(other), self)
    def __truediv__(self, other): return ops.Div.apply(self, self._lift(other))
    def __rtruediv__(self, other): return ops.Div.apply(self._lift(other), self)
    def __neg__(self): return ops.Neg.apply(self)

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float)):
            raise TypeError("only a Python number is supported as exponent")
        return ops.Pow.apply(self, exponent=exponent)

    def __matmul__(self, other):
        other = self._lift(other)
        if self.ndim > 1 and other.ndim > 1:
            return ops.MatMul.apply(self, other)
        # a vector is a 1-row matrix on the left, a 1-column matrix on the right, as in
        # torch; the added dim is dropped from the result
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(f"matmul needs tensors of at least 1 dim, not shapes {self.shape} and {other.shape}")
        inner = other.shape[-2] if other.ndim > 1 else other.shape[0]
        if self.shape[-1] != inner:
            raise ValueError(f"matmul shapes {self.shape} and {other.shape} do not fit: "
                             f"{self.shape[-1]} columns against {inner} rows")
        a = self.unsqueeze(0) if self.ndim == 1 else self
        b = other.unsqueeze(1) if other.ndim == 1 else other
        out = ops.MatMul.apply(a, b)
        *batch, rows, cols = out.shape
        shape = tuple(batch) + ((rows,) if self.ndim > 1 else ()) + ((cols,) if other.ndim > 1 else ())
        return out.view(shape)

    def __rmatmul__(self, other):
        return self._lift(other) @ self

    # comparisons: a bool tensor outside the graph (no gradient flows through a step function)
    def _compare(self, other, compare):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_op(self.xp.asarray(compare(self._data, other)), self.device, None)  # (0-d: not a scalar)

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    # --- indexing -------------------------------------------------------------------------

    def __getitem__(self, index):
        return ops.Index.apply(self, index=self._index(index))

    def _index(self, index):
        """An index with its lists, ranges and Tensors as arrays on this device; slices stay."""
        if isinstance(index, tuple):
            return tuple(map(self._index, index))
        if isinstance(index, Tensor):
            index = index.data
        if isinstance(index, (list, range)):  # (an empty one too is an integer index, as range(0) in a batch of 0)
            index = backend.to_array(list(index), None if len(index) else "int64", device=self.device)
        return backend.to_array(index, device=self.device) if backend.is_array(index) else index

    # --- in place: torch's rules, never a silent rebinding -------------------------------

    def _check_in_place(self, what):
        if self.grad_fn is not None:
            raise RuntimeError(f"{what} on a tensor made by an op ({self.grad_fn.name}): in-place changes "
                               "are not recorded in the graph; write `y = y + x` style code instead, or "
                               "change a .detach()ed copy")
        if self._requires_grad and is_grad_enabled():
            raise RuntimeError(f"a leaf tensor that requires grad is being used in an in-place operation "
                               f"({what}): wrap it in `with no_grad():` to change a parameter, as makemore "
                               "does to scale its last layer")

    def _in_place(self, what, change, other):
        self._check_in_place(what)
        if autograd._recorder is not None:
            autograd._recorder.changed(self, what)
        change(self._data, other.data if isinstance(other, Tensor) else other)
        self._version[0] += 1
        return self

    def __iadd__(self, other): return self._in_place("+=", lambda a, b: a.__iadd__(b), other)
    def __isub__(self, other): return self._in_place("-=", lambda a, b: a.__isub__(b), other)
    def __imul__(self, other): return self._in_place("*=", lambda a, b: a.__imul__(b), other)
    def __itruediv__(self, other): return self._in_place("/=", lambda a, b: a.__itruediv__(b), other)

    def __setitem__(self, index, value):
        self._in_place("item assignment", lambda a, v: a.__setitem__(self._index(index), v), value)

    # --- math (each a node; see ops/) --------------------------------------------------------

    def tanh(self): return ops.Tanh.apply(self)
    def sigmoid(self): return ops.Sigmoid.apply(self)
    def relu(self): return ops.ReLU.apply(self)
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)
    def log10(self): return ops.Log10.apply(self)
    def sqrt(self): return ops.Sqrt.apply(self)
    def abs(self): return ops.Abs.apply(self)
    def clone(self): return ops.Clone.apply(self)

    # reductions take torch's `keepdim`, and `keepdims` as torch also accepts
    def sum(self, dim=None, keepdim=False, *, keepdims=None):
        return ops.Sum.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=_keep(keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, keepdims=None):
        return ops.Mean.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=_keep(keepdim, keepdims))

    def var(self, dim=None, keepdim=False, correction=1, *, keepdims=None):
        """sum((x - mean)^2) / (n - correction): unbiased (Bessel) by default, as torch."""
        dims = ops.normalize_dims(dim, self.ndim)
        n = math.prod(self.shape[d] for d in dims)
        centered = self - self.mean(dims, keepdim=True)
        return (centered * centered).sum(dims, _keep(keepdim, keepdims)) / max(n - correction, 0)

    def std(self, dim=None, keepdim=False, correction=1, *, keepdims=None):
        """sqrt(var): the square root of the (by default unbiased) variance."""
        return self.var(dim, keepdim, correction, keepdims=keepdims).sqrt()

    def max(self, dim=None, keepdim=False, *, keepdims=None):
        """The largest element (0-d); along `dim`, the named tuple (values, indices)."""
        return self._extreme(dim, _keep(keepdim, keepdims), smallest=False)

    def min(self, dim=None, keepdim=False, *, keepdims=None):
        """The smallest element (0-d); along `dim`, the named tuple (values, indices)."""
        return self._extreme(dim, _keep(keepdim, keepdims), smallest=True)

    def _extreme(self, dim, keepdim, smallest):
        if self.numel() == 0:
            raise RuntimeError(f"{'min' if smallest else 'max'}() of an empty tensor of shape {self.shape}")
        if dim is None:
            return ops.Max.apply(self, dim=None, keepdim=False, smallest=smallest)
        x = self.view(1) if self.ndim == 0 else self  # a 0-d tensor reduces over its one element
        keepdim = keepdim and self.ndim > 0  # ... and stays 0-d, as in torch
        dim = ops.normalize_dims(dim, x.ndim)[0]
        values = ops.Max.apply(x, dim=dim, keepdim=keepdim, smallest=smallest)
        return (MinResult if smallest else MaxResult)(values, x._arg(dim, keepdim, smallest))

    def argmax(self, dim=None, keepdim=False):
        """Index of the largest element (flat, without `dim`), int64, outside the graph."""
        return self._arg(dim, keepdim, smallest=False)

    def argmin(self, dim=None, keepdim=False):
        return self._arg(dim, keepdim, smallest=True)

    def _arg(self, dim, keepdim, smallest):
        find = self._data.argmin if smallest else self._data.argmax
        if dim is not None and self.ndim == 0:  # one element, along dim 0 or -1: index 0, 0-d as in torch
            ops.normalize_dims(dim, 0)  # (any other dim is an IndexError)
            dim = None
        if dim is None:
            index = self.xp.asarray(find()).reshape((1,) * self.ndim if keepdim else ())
        else:
            index = find(axis=ops.normalize_dims(dim, self.ndim)[0], keepdims=keepdim)
        return Tensor._from_op(index.astype("int64"), self.device, None)

    # --- shape -------------------------------------------------------------------------

    def view(self, *shape):
        shape = _shape(shape)
        try:
            return ops.Reshape.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"cannot view a tensor of shape {self.shape} as {shape}") from None

    reshape = view

    def squeeze(self, dim=None):
        """Drop dims of size 1 (only `dim`, when given and of size 1)."""
        dims = ops.normalize_dims(dim, self.ndim)
        return self.view(tuple(n for d, n in enumerate(self.shape) if not (d in dims and n == 1)))

    def unsqueeze(self, dim):
        dim = ops.normalize_dims(dim, self.ndim + 1)[0]
        return self.view(self.shape[:dim] + (1,) + self.shape[dim:])

    def transpose(self, dim0, dim1):
        dim0, dim1 = (ops.normalize_dims(d, self.ndim)[0] for d in (dim0, dim1))
        return ops.Transpose.apply(self, dim0=dim0, dim1=dim1)

    @property
    def T(self):
        return self.transpose(-2, -1)


def _keep(keepdim, keepdims):
    """keepdim, or its spelling keepdims when that was given."""
    return keepdim if keepdims is None else keepdims


def _shape(shape):
    """Sizes given as ints, zeros(2, 3), or as one tuple, zeros((2, 3)), as in torch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
