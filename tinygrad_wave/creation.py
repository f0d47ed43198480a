"""New tensors with torch's names: zeros, ones, randn, their *_like forms,
and the function spellings a notebook uses (tinygrad_wave.tanh(x))."""
from . import backend
from .methods import _shape
from .tensor import Tensor


def zeros(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).zeros(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def ones(*shape, requires_grad=False, dtype=None, device="cpu"):
    return Tensor(backend.namespace(device).ones(_shape(shape), backend.as_dtype(dtype) or backend.DEFAULT_FLOAT),
                  requires_grad, device=device)


def randn(*shape, generator=None, requires_grad=False, dtype=None, device="cpu"):
    """Standard normal samples from `generator` (a numpy.random.Generator, as a
    notebook's torch.Generator), else from the global one (see manual_seed)."""
    return Tensor(backend.randn(_shape(shape), backend.as_dtype(dtype), device, generator),
                  requires_grad, device=device)


def zeros_like(t, requires_grad=False, dtype=None):
    return zeros(t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype, device=t.device)


def ones_like(t, requires_grad=False, dtype=None):
    return ones(t.shape, requires_grad=requires_grad, dtype=dtype or t.dtype, device=t.device)


def tanh(t):
    return t.tanh()
