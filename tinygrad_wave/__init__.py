"""tinygrad_wave: a small autograd engine whose every backward pass is written out by hand.

The top level answers to torch's names, so that lecture code runs with only its
imports switched: `import tinygrad_wave as torch`, `import tinygrad_wave.nn.functional as F`.
"""
from . import allocator, cuda, functional, makemore_layers, nn, optim, utils
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .creation import arange, linspace, ones, ones_like, tensor, zeros, zeros_like
from .dtypes import *  # noqa: F401,F403 (float32, long, ...: torch's dtype names)
from .dtypes import __all__ as _dtype_names
from .toplevel import (all, allclose, any, cat, clamp, exp, histogram, log, pow, roll, sigmoid, split, sqrt,  # noqa: A004
                        stack, tanh, topk, tril, triu, where)
from .random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed, multinomial, rand,
                     randint, randn, randperm, seed, set_rng_state)
from .serialization import load, save
from .tensor import Tensor

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "manual_seed", "zeros", "ones",
           "zeros_like", "ones_like", "arange", "linspace", "cat", "stack", "all", "any", "allclose",
           "histogram", "clamp", "tanh", "tril", "triu", "where", "exp", "log", "sqrt", "sigmoid", "pow", "roll", "topk", "split",
           "Generator", "default_generator", "initial_seed", "seed", "get_rng_state", "set_rng_state",
           "rand", "randn", "randint", "randperm", "multinomial", "save", "load", "cuda", "functional", "nn", "optim",
           "utils", *_dtype_names]

allocator.keep_freed_memory()  # a step's arrays, freed, are the next step's: not given back to the OS between them
