"""tinygrad_wave: a small autograd engine whose every backward pass is written out by hand.

The top level answers to torch's names, so that lecture code runs with only its
imports switched: `import tinygrad_wave as torch`, `import tinygrad_wave.nn.functional as F`.
"""
from . import functional, nn, optim
from .autograd import is_grad_enabled, no_grad
from .creation import arange, linspace, ones, ones_like, tensor, zeros, zeros_like
from .dtypes import *  # noqa: F401,F403 (float32, long, ...: torch's dtype names)
from .dtypes import __all__ as _dtype_names
from .functions import all, allclose, any, cat, exp, histogram, log, sigmoid, sqrt, stack, tanh  # noqa: A004
from .random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed, multinomial, rand,
                     randint, randn, seed, set_rng_state)
from .tensor import Tensor

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "manual_seed", "zeros", "ones",
           "zeros_like", "ones_like", "arange", "linspace", "cat", "stack", "all", "any", "allclose",
           "histogram", "tanh", "exp", "log", "sqrt", "sigmoid", "Generator", "default_generator", "initial_seed",
           "seed", "get_rng_state", "set_rng_state",
           "rand", "randn", "randint", "multinomial", "functional", "nn", "optim", *_dtype_names]
