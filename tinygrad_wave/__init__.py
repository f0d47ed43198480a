"""tinygrad_wave: a small autograd engine whose every backward pass is written out by hand."""
from .autograd import is_grad_enabled, no_grad
from .backend import manual_seed
from .tensor import Tensor, ones, randn, zeros

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "manual_seed", "zeros", "ones", "randn"]
