"""Tensor: the user's object. An array (`data`), its gradient (`grad`), the
node that made it (`grad_fn`, None for a leaf), and operator sugar that
turns Python expressions into ops. Backward itself lives in autograd.py.
"""
import math

from . import backend, ops
from .autograd import backward


class Tensor:
    __slots__ = ("_data", "grad", "grad_fn", "_requires_grad", "device")
    __array_ufunc__ = None  # `ndarray + Tensor` must call Tensor.__radd__, not loop over elements

    def __init__(self, data, requires_grad=False, dtype=None, device="cpu"):
        if isinstance(data, Tensor):
            data = data.data
        array = backend.to_array(data, backend.as_dtype(dtype), backend.check_device(device))
        # a copy, as torch.tensor() makes: training must not change the caller's array
        self._data = array.copy() if array is data else array
        self.device = device
        self.grad = None
        self.grad_fn = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _from_op(cls, data, device, node):
        """Wrap an op's output without re-checking what the op already knows."""
        t = cls.__new__(cls)
        t._data, t.device, t.grad, t.grad_fn = data, device, None, node
        t._requires_grad = node is not None
        return t

    # --- attributes ---------------------------------------------------------------

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):
        if array is self._data:  # `t.data -= x` changed the array in place: nothing to check
            return
        if isinstance(array, Tensor):
            array = array.data
        array = backend.to_array(array, self.dtype, self.device)
        if array.shape != self.shape:
            raise ValueError(f"cannot assign data of shape {tuple(array.shape)} "
                             f"to a tensor of shape {self.shape}")
        self._data = array

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

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        extra = f", grad_fn={self.grad_fn!r}" if self.grad_fn else (
            ", requires_grad=True" if self.requires_grad else "")
        device = f", device={self.device!r}" if self.device != "cpu" else ""
        return f"Tensor({backend.to_host(self._data)!r}{device}{extra})"

    # --- leaving and moving ---------------------------------------------------------

    def numpy(self):
        """A host NumPy copy of the data."""
        return backend.to_host(self._data)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor of one element, not shape {self.shape}")
        return self._data.reshape(()).item()

    def detach(self):
        """The same data, outside the graph."""
        return Tensor._from_op(self._data, self.device, None)

    def to(self, device=None, dtype=None):
        """A copy on another device or of another dtype (self when nothing changes),
        in the graph: its gradient flows back to this tensor."""
        device = backend.check_device(device or self.device)
        dtype = backend.as_dtype(dtype) or self.dtype
        if device == self.device and dtype == self.dtype:
            return self
        return ops.To.apply(self, dtype=dtype, device=device)

    def _move(self, device=None, dtype=None):
        """In place, for Module.to: optimisers hold this very object, so it must stay."""
        dtype = backend.as_dtype(dtype)
        if dtype is not None and self.requires_grad and not backend.is_floating(dtype):
            raise ValueError(f"cannot cast a tensor that requires grad to {dtype}: it needs a float dtype")
        self.device = backend.check_device(device or self.device)
        self._data = backend.to_array(self._data, dtype, self.device)
        if self.grad is not None:
            self.grad = backend.to_array(self.grad, self.dtype, self.device)

    # --- gradients -------------------------------------------------------------------

    def backward(self, grad=None):
        """Fill .grad of every leaf that this tensor depends on with d self / d leaf,
        weighted by `grad` (d loss / d self; 1 for a one-element tensor)."""
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
        backward(self, grad)

    def _accumulate(self, grad):
        """A leaf sums the gradients of every backward call into .grad, as torch does."""
        if grad.dtype != self.dtype:
            grad = grad.astype(self.dtype)
        self.grad = grad if self.grad is None else self.grad + grad

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

    def __getitem__(self, index):
        index = tuple(map(self._on_my_device, index)) if isinstance(index, tuple) else self._on_my_device(index)
        return ops.Index.apply(self, index=index)

    def _on_my_device(self, index):
        """An index array (or Tensor) as an array on this tensor's device; slices stay."""
        if isinstance(index, Tensor):
            index = index.data
        return backend.to_array(index, device=self.device) if backend.is_array(index) else index

    # --- math -------------------------------------------------------------------------

    def tanh(self): return ops.Tanh.apply(self)
    def exp(self): return ops.Exp.apply(self)
    def log(self): return ops.Log.apply(self)

    def sum(self, dim=None, keepdim=False):
        return ops.Sum.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        return ops.Mean.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=keepdim)

    def var(self, dim=None, keepdim=False, correction=1):
        """sum((x - mean)^2) / (n - correction): unbiased (Bessel) by default, as torch."""
        dims = ops.normalize_dims(dim, self.ndim)
        n = math.prod(self.shape[d] for d in dims)
        centered = self - self.mean(dims, keepdim=True)
        return (centered * centered).sum(dims, keepdim) / max(n - correction, 0)

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


def _shape(shape):
    """Sizes given as ints, zeros(2, 3), or as one tuple, zeros((2, 3)), as in torch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def zeros(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).zeros(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def ones(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).ones(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def randn(*shape, requires_grad=False, dtype=None, device="cpu"):
    """Standard normal samples from the global generator (see manual_seed)."""
    return Tensor(backend.randn(_shape(shape), backend.as_dtype(dtype), device), requires_grad, device=device)
