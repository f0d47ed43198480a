"""tinygrad_wave: a small autograd engine whose every backward pass is written out by hand."""
from .autograd import is_grad_enabled, no_grad
from .backend import manual_seed
from .creation import ones, ones_like, randn, tanh, zeros, zeros_like
from .tensor import Tensor

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "manual_seed", "zeros", "ones", "randn",
           "zeros_like", "ones_like", "tanh"]
