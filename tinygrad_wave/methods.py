"""The math a Tensor offers: operator sugar and methods, each building one op
from ops/ (so each has its own backward there), with torch's names and
torch's rules for mixing dtypes:

- an integer (or bool) tensor meeting a float one takes the float's dtype, and a
  Python float with an integer tensor gives float32 (`t * 0.5`, `t / 2`);
- a Python number never widens a tensor (`x * 0.1` stays float32, `n + 1` int32);
- a 0-d tensor does not widen a tensor with dims of the same kind;
- float-valued ops (exp, log, sqrt, tanh, ...) of an integer tensor give float32,
  and mean, var and std of one are refused, as torch refuses them.
"""
import itertools
import math
from collections import namedtuple

from . import backend, ops

# what .max(dim) and .min(dim) return, as torch.return_types.max does
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])
TopKResult = namedtuple("topk", ["values", "indices"])


class TensorMethods:
    __slots__ = ()

    # --- operands: numbers lifted to tensors, dtypes promoted as torch does ------------

    def _lift(self, other):
        """`other` as a Tensor on this device. A Python number takes this tensor's dtype when
        that keeps its kind (an int into an int or float tensor, a float into a float one);
        otherwise an int is int64 and a float float32, as torch's defaults."""
        tensor = type(self.detach())  # the plain tensor class (a Parameter detached is a Tensor, as in torch)
        if isinstance(other, tensor):
            if other.device != self.device:
                raise RuntimeError(f"tensors on different devices: {self.device} and {other.device}")
            return other
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            floating, integer = backend.is_floating(self.dtype), backend.is_integer(self.dtype)
            if floating or isinstance(other, int) and integer:
                return tensor(other, dtype=self.dtype, device=self.device)
            return tensor(other, dtype="int64" if isinstance(other, int) else backend.DEFAULT_FLOAT, device=self.device)
        return tensor(other, device=self.device)

    def _pair(self, other, reverse=False):
        """(self, other) -- or (other, self) -- as tensors of one dtype, torch's result type."""
        other = self._lift(other)
        a, b = (other, self) if reverse else (self, other)
        if a._data.dtype is b._data.dtype or a.dtype == b.dtype:
            return a, b
        dtype = backend.result_type(a._data, b._data)
        return a.to(dtype=dtype), b.to(dtype=dtype)

    def _floating(self):
        """self, or self as float32 when it is an integer or bool tensor (torch's rule for exp, log, /)."""
        return self if backend.is_floating(self.dtype) else self.to(dtype=backend.DEFAULT_FLOAT)

    def _needs_floating(self, what):
        if not backend.is_floating(self.dtype):
            raise RuntimeError(f"{what}() needs a floating-point tensor, not {self.dtype}: "
                               "call .float() first")

    # --- operator sugar ------------------------------------------------------------------

    def __add__(self, other): return ops.Add.apply(*self._pair(other))
    def __radd__(self, other): return ops.Add.apply(*self._pair(other, reverse=True))
    def __sub__(self, other): return ops.Sub.apply(*self._pair(other))
    def __rsub__(self, other): return ops.Sub.apply(*self._pair(other, reverse=True))
    def __mul__(self, other): return ops.Mul.apply(*self._pair(other))
    def __rmul__(self, other): return ops.Mul.apply(*self._pair(other, reverse=True))
    def __truediv__(self, other): return ops.Div.apply(*(t._floating() for t in self._pair(other)))
    def __rtruediv__(self, other): return ops.Div.apply(*(t._floating() for t in self._pair(other, reverse=True)))
    def __neg__(self): return ops.Neg.apply(self)

    def __pow__(self, exponent):
        if not isinstance(exponent, (int, float)):
            raise TypeError("only a Python number is supported as exponent")
        x = self if isinstance(exponent, int) else self._floating()
        return ops.Pow.apply(x, exponent=exponent)

    def pow(self, exponent):
        return self ** exponent

    def __rpow__(self, base):
        """base ** t for a Python number base (makemore's 10**lre)."""
        if not isinstance(base, (int, float)):
            raise TypeError("only a Python number is supported as the base of a tensor power")
        return ops.RPow.apply(self if isinstance(base, int) else self._floating(), base=base)

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
        other = other._data if isinstance(other, TensorMethods) else other
        return type(self)._wrap(self.xp.asarray(compare(self._data, other)), self.device, None)  # (0-d: not a scalar)

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    def all(self):
        """Whether every element is nonzero: a 0-d bool tensor, as torch.all."""
        return type(self)._wrap(self.xp.asarray(self._data.all()), self.device, None)

    def any(self):
        return type(self)._wrap(self.xp.asarray(self._data.any()), self.device, None)

    # --- indexing -------------------------------------------------------------------------

    def __getitem__(self, index):
        return ops.Index.apply(self, index=self._index(index))

    def _index(self, index):
        """An index with its lists, ranges and Tensors as arrays on this device (slices stay),
        its integer arrays checked against the shape as NumPy and torch check them."""
        index = tuple(map(self._index_part, index)) if isinstance(index, tuple) else self._index_part(index)
        backend.check_in_bounds(index, self.shape)
        return index

    def _index_part(self, index):
        if isinstance(index, TensorMethods):
            index = index._data
        if isinstance(index, (list, range)):  # (an empty one too is an integer index, as range(0) in a batch of 0)
            index = backend.to_array(list(index), None if len(index) else "int64", device=self.device)
        return backend.to_array(index, device=self.device) if backend.is_array(index) else index

    # --- math (each a node; see ops/) --------------------------------------------------------

    def tanh(self): return ops.Tanh.apply(self._floating())
    def sigmoid(self): return ops.Sigmoid.apply(self._floating())
    def relu(self): return ops.ReLU.apply(self)
    def exp(self): return ops.Exp.apply(self._floating())
    def log(self): return ops.Log.apply(self._floating())
    def log10(self): return ops.Log10.apply(self._floating())
    def sqrt(self): return ops.Sqrt.apply(self._floating())
    def abs(self): return ops.Abs.apply(self)
    def clone(self): return ops.Clone.apply(self)

    # reductions take torch's `keepdim`, and `keepdims` as torch also accepts
    def sum(self, dim=None, keepdim=False, *, keepdims=None):
        return ops.Sum.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=_keep(keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, keepdims=None):
        self._needs_floating("mean")
        return ops.Mean.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=_keep(keepdim, keepdims))

    def var(self, dim=None, keepdim=False, *, unbiased=None, correction=None, keepdims=None):
        """sum((x - mean)^2) / (n - correction): unbiased (Bessel's n - 1) by default, as torch;
        unbiased=False, or correction=0, divides by n."""
        return self._spread(ops.Var, "var", dim, keepdim, unbiased, correction, keepdims)

    def std(self, dim=None, keepdim=False, *, unbiased=None, correction=None, keepdims=None):
        """sqrt(var), as one op: its gradient is 0, not NaN, where the values are all equal."""
        return self._spread(ops.Std, "std", dim, keepdim, unbiased, correction, keepdims)

    def _spread(self, op, what, dim, keepdim, unbiased, correction, keepdims):
        self._needs_floating(what)
        if unbiased is not None and correction is not None:
            raise TypeError(f"{what}() takes unbiased= or correction=, not both")
        correction = (1 if unbiased else 0) if unbiased is not None else 1 if correction is None else correction
        return op.apply(self, dims=ops.normalize_dims(dim, self.ndim), keepdim=_keep(keepdim, keepdims),
                        correction=correction)

    def max(self, dim=None, keepdim=False, *, keepdims=None):
        """The largest element (0-d); along `dim`, the named tuple (values, indices)."""
        return self._extreme(dim, _keep(keepdim, keepdims), smallest=False)

    def min(self, dim=None, keepdim=False, *, keepdims=None):
        """The smallest element (0-d); along `dim`, the named tuple (values, indices)."""
        return self._extreme(dim, _keep(keepdim, keepdims), smallest=True)

    def _extreme(self, dim, keepdim, smallest):
        if self.numel() == 0 and (dim is None or self.shape[dim] == 0):  # (other dims may be empty, as in torch)
            raise RuntimeError(f"{'min' if smallest else 'max'}() of an empty tensor of shape {self.shape}"
                               f"{'' if dim is None else f' along dim {dim}, which is empty'}")
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
        return type(self)._wrap(index.astype("int64"), self.device, None)

    # --- choosing by a mask (see ops/select.py) ---------------------------------------------

    def masked_fill(self, mask, value):
        """self with `value` wherever the bool `mask` (broadcast to self's shape) is True, as
        torch's: gpt.py's wei.masked_fill(tril == 0, float('-inf'))."""
        mask = mask._data if isinstance(mask, TensorMethods) else backend.to_array(mask, device=self.device)
        if mask.dtype != bool:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype {mask.dtype}")
        if not _broadcasts_to(mask.shape, self.shape):
            raise RuntimeError(f"masked_fill: the mask of shape {tuple(mask.shape)} does not broadcast to "
                               f"the tensor's shape {self.shape}")
        if isinstance(value, TensorMethods):
            if value.ndim != 0:
                raise RuntimeError(f"masked_fill only supports a 0-d tensor as value, got shape {value.shape}")
            value = value.item()
        return ops.MaskedFill.apply(self, mask=mask, value=value)

    def clamp(self, min=None, max=None):  # noqa: A002 (torch's argument names)
        """self with each value below `min` raised to it and each above `max` lowered to it
        (min(max(x, min), max): a `min` above `max` gives `max` everywhere, as torch's)."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        for bound in (min, max):
            if bound is not None and not isinstance(bound, (int, float)):
                raise TypeError(f"clamp takes numbers as bounds here, not {type(bound).__name__}: for "
                                "bounds that vary by element, use torch.where(x < low, low, x) and the like")
        return ops.Clamp.apply(self, low=min, high=max)

    clip = clamp  # torch's alias

    def tril(self, diagonal=0):
        """The lower triangle of the last two dims (j - i <= diagonal kept), the rest 0."""
        return self._triangle(diagonal, upper=False)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dims (j - i >= diagonal kept), the rest 0."""
        return self._triangle(diagonal, upper=True)

    def _triangle(self, diagonal, upper):
        if self.ndim < 2:
            raise RuntimeError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 dimensions, "
                               f"got shape {self.shape}")
        return ops.Triangle.apply(self, diagonal=int(diagonal), upper=upper)

    # --- shape -------------------------------------------------------------------------

    def reshape(self, *shape):
        """The same elements in another shape: a view of the same memory where the elements' order
        allows it, else a copy."""
        shape = _shape(shape)
        try:
            return ops.Reshape.apply(self, shape=shape)
        except ValueError:
            raise ValueError(f"cannot view a tensor of shape {self.shape} as {shape}") from None

    def view(self, *shape):
        """reshape(), refused where it would copy a view, as torch's: after a transpose, the elements
        of a row no longer lie side by side in memory. .contiguous().view() says where the copy
        happens. (An op's own output is never refused: NumPy lays some out otherwise than torch,
        a sum over a transposed tensor's dim, say, which torch makes contiguous.)"""
        shape = _shape(shape)
        if self._data.base is not None and not self._data.flags.c_contiguous and self.numel() > 0:
            try:
                copied = not self.xp.may_share_memory(self._data.reshape(shape), self._data)
            except ValueError:  # a shape of another size: reshape's own error, below
                copied = False
            if copied:
                raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                                   "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return self.reshape(shape)

    def is_contiguous(self):
        """Whether the elements lie in memory in row-major order (what view() needs for any shape)."""
        return bool(self._data.flags.c_contiguous)

    def flatten(self, start_dim=0, end_dim=-1):
        """The dims from start_dim to end_dim (both included) as one, as torch's (a 0-d tensor
        becomes 1-d)."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (ops.normalize_dims(d, self.ndim)[0] for d in (start_dim, end_dim))
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        return self.reshape(self.shape[:start] + (math.prod(self.shape[start:end + 1]),) + self.shape[end + 1:])

    def squeeze(self, dim=None):
        """Drop dims of size 1 (only `dim`, when given and of size 1)."""
        dims = ops.normalize_dims(dim, self.ndim)
        return self.reshape(tuple(n for d, n in enumerate(self.shape) if not (d in dims and n == 1)))

    def unsqueeze(self, dim):
        dim = ops.normalize_dims(dim, self.ndim + 1)[0]
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def transpose(self, dim0, dim1):
        dim0, dim1 = (ops.normalize_dims(d, self.ndim)[0] for d in (dim0, dim1))
        return ops.Transpose.apply(self, dim0=dim0, dim1=dim1)

    @property
    def T(self):
        return self.transpose(-2, -1)

    def expand(self, *sizes):
        """A view repeating the dims of size 1 (and new leading dims) up to `sizes`; -1 keeps a size."""
        sizes = _shape(sizes)
        new = len(sizes) - self.ndim  # leading dims that the tensor does not have
        if new < 0:
            raise RuntimeError(f"expand: the number of sizes given ({len(sizes)}) must be at least the number of "
                               f"dims of the tensor ({self.ndim})")
        old = (None,) * new + self.shape
        shape = tuple(o if n == -1 and o is not None else n for n, o in zip(sizes, old))
        for d, (n, o) in enumerate(zip(shape, old)):
            if n < 0 or o not in (None, 1, n):
                raise RuntimeError(f"expand: size {n} cannot stand at dim {d} of a tensor of shape {self.shape} "
                                   f"(target sizes {list(sizes)}: -1 keeps an existing size, a size of 1 repeats)")
        return ops.Expand.apply(self, shape=shape)

    def contiguous(self):
        """self when its elements lie in row-major order, else a copy that does (in the graph)."""
        return self if self._data.flags.c_contiguous else self.clone()

    def split(self, split_size_or_sections, dim=0):
        """Pieces along `dim`: each split_size long (the last shorter), or of the sizes listed."""
        dim = ops.normalize_dims(dim, self.ndim)[0]
        n = self.shape[dim]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0 and n > 0:
                raise RuntimeError(f"split expects split_size be positive, but got split_size={split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - start) for start in range(0, n, split_size_or_sections)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n or any(size < 0 for size in sizes):
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                                   f"at dimension {dim}), but got split_sizes={sizes}")
        ends = list(itertools.accumulate(sizes))
        return tuple(self[(slice(None),) * dim + (slice(end - size, end),)] for size, end in zip(sizes, ends))

    def roll(self, shifts, dims=None):
        """Elements shifted along `dims` by `shifts`, wrapping around; without dims, along the tensor read flat."""
        if dims is None:
            if not isinstance(shifts, int):
                raise RuntimeError("roll: without dims, shifts must be one int")
            return ops.Roll.apply(self, shifts=shifts, dims=None)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
        dims = tuple(ops.normalize_dims(d, self.ndim)[0] for d in dims)
        return ops.Roll.apply(self, shifts=shifts, dims=dims)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The named tuple (values, indices) of the k largest (or smallest) elements along `dim`,
        largest (smallest) first; with sorted=False too, an order torch allows (it leaves that one
        open). Equal elements may come in another order than torch's (its order is its own)."""
        x = self.view(1) if self.ndim == 0 else self
        dim = ops.normalize_dims(dim, x.ndim)[0]
        if not 0 <= k <= x.shape[dim]:
            raise RuntimeError(f"topk: selected index k ({k}) out of range for a dim of size {x.shape[dim]}")
        order = self.xp.argsort(x._data, axis=dim, kind="stable")
        if largest:
            order = self.xp.flip(order, axis=dim)
        indices = order[(slice(None),) * dim + (slice(0, k),)].astype("int64")
        values = ops.TakeAlongDim.apply(x, indices=indices, dim=dim)
        shape = self.shape if self.ndim == 0 else values.shape
        return TopKResult(values.view(shape), type(self)._wrap(indices.reshape(shape), self.device, None))


def _broadcasts_to(shape, target):
    """Whether an array of `shape` broadcasts to `target` without changing it."""
    try:
        return backend.namespace("cpu").broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _keep(keepdim, keepdims):
    """keepdim, or its spelling keepdims when that was given."""
    return keepdim if keepdims is None else keepdims


def _shape(shape):
    """Sizes given as ints, zeros(2, 3), or as one tuple, zeros((2, 3)), as in torch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape

