"""torch's functions of tensors, for notebook code that spells them that way:
torch.tanh(x) is x.tanh(), torch.all(t) is t.all() and torch.pow(x, 3.0) is x ** 3.0;
and the few that are not methods: cat, stack, where, allclose and histogram.
"""
import builtins
from collections import namedtuple

from . import backend, ops
from .methods import TensorMethods

# what histogram returns, as torch.return_types.histogram does
HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])


def tanh(x): return x.tanh()
def exp(x): return x.exp()
def log(x): return x.log()
def sqrt(x): return x.sqrt()
def sigmoid(x): return x.sigmoid()
def pow(input, exponent): return input ** exponent  # noqa: A001 (a number either side, as ** takes one)
def roll(input, shifts, dims=None): return input.roll(shifts, dims)
def topk(input, k, dim=-1, largest=True, sorted=True): return input.topk(k, dim, largest, sorted)  # noqa: A002
def split(tensor, split_size_or_sections, dim=0): return tensor.split(split_size_or_sections, dim)
def clamp(input, min=None, max=None): return input.clamp(min, max)  # noqa: A002
def tril(x, diagonal=0): return x.tril(diagonal)
def triu(x, diagonal=0): return x.triu(diagonal)


def cat(tensors, dim=0):
    """The tensors side by side along `dim` (every other dim equal), as one node."""
    tensors = _tensors(tensors, "cat")
    first = tensors[0]
    dim = ops.normalize_dims(dim, first.ndim)[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or builtins.any(a != b for d, (a, b) in enumerate(zip(t.shape, first.shape)) if d != dim):
            raise ValueError(f"cat along dim {dim} needs the same sizes in every other dim, "
                             f"got shapes {first.shape} and {t.shape}")
    dtype = backend.common_dtype([t._data for t in tensors])  # torch's, not NumPy's
    return ops.Cat.apply(*[t if t.dtype == dtype else t.to(dtype=dtype) for t in tensors], dim=dim)


def stack(tensors, dim=0):
    """The tensors (all of one shape) along a new dim."""
    tensors = _tensors(tensors, "stack")
    if builtins.any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack needs tensors of one shape, got {sorted({t.shape for t in tensors})}")
    dim = ops.normalize_dims(dim, tensors[0].ndim + 1)[0]
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def _tensors(tensors, what):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{what} needs at least one tensor")
    if not builtins.all(isinstance(t, TensorMethods) for t in tensors):
        raise TypeError(f"{what} takes a sequence of tensors")
    if len({t.device for t in tensors}) > 1:
        raise RuntimeError(f"{what} of tensors on different devices: {sorted({t.device for t in tensors})}")
    return tensors


def where(condition, input, other):
    """input where the bool `condition` is True, other elsewhere, all three broadcast
    together (input and other tensors or numbers, promoted to one dtype), as torch.where."""
    if not isinstance(condition, TensorMethods) or condition.dtype != bool:
        raise RuntimeError("where expects a bool tensor as condition")
    if isinstance(input, TensorMethods):
        a, b = input._pair(other)
    elif isinstance(other, TensorMethods):
        a, b = other._pair(input, reverse=True)
    else:  # two numbers: torch's dtypes (two ints give int64, two bools bool, a float float32)
        a, b = condition._lift(input)._pair(other)
    return ops.Where.apply(a, b, condition=condition._data)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether |a - b| <= atol + rtol |b| everywhere (a Python bool), as torch.allclose."""
    return bool(a.xp.allclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def histogram(input, bins=100, *, range=None, weight=None, density=False):
    """(hist, bin_edges), both float tensors of input's dtype: counts (or, with density, a
    density that integrates to 1) in `bins` equal bins from min to max (or over `range`)."""
    if not backend.is_floating(input.dtype):
        raise RuntimeError(f"histogram needs a floating-point tensor, not {input.dtype}")
    data = input._data.reshape(-1)
    weights = None if weight is None else weight._data.reshape(-1)
    hist, edges = input.xp.histogram(data, bins=bins, range=range, weights=weights, density=density)
    wrap = lambda a: type(input)._wrap(a.astype(input.dtype), input.device, None)
    return HistogramResult(wrap(hist), wrap(edges))


def all(t): return t.all()  # noqa: A001 (torch's names: this module calls builtins.all and .any)
def any(t): return t.any()  # noqa: A001
