"""torch.nn: the module system (module.py), torch's layers (layers.py), nn.init, and
nn.functional, which is tinygrad_wave.functional under torch's path.

    import tinygrad_wave as torch
    import tinygrad_wave.nn as nn
    from tinygrad_wave.nn import functional as F
"""
import sys

from .. import functional
from . import init
from .layers import GELU, BatchNorm1d, Dropout, Embedding, LayerNorm, Linear, ReLU, Tanh
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

# torch's path: `import tinygrad_wave.nn.functional as F` finds the module, as os.path is found
sys.modules[__name__ + ".functional"] = functional

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Linear", "Embedding", "LayerNorm",
           "BatchNorm1d", "Dropout", "ReLU", "GELU", "Tanh", "init", "functional"]
