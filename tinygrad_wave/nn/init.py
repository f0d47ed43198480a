"""torch.nn.init: fill a tensor in place, outside the graph, with torch's numbers.

Every draw comes from torch's CPU stream (random.py), in the order torch makes it,
so that a model built after manual_seed(s) starts with torch's weights, and so
from torch's first loss.
"""
import math

from .. import backend, watch
from ..random import normal_values, uniform_values


def _fill(tensor, values):
    """Write `values` (a host array or a number) into the tensor's memory, in place."""
    watch.written(tensor, "an nn.init function")
    tensor._data[...] = backend.to_array(values, tensor.dtype, tensor.device)
    tensor._version[0] += 1
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    return _fill(tensor, uniform_values(tensor.numel(), a, b, tensor.dtype, generator).reshape(tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _fill(tensor, normal_values(tensor.numel(), mean, std, tensor.dtype, generator).reshape(tensor.shape))


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def constant_(tensor, val):
    return _fill(tensor, val)


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activations at unit variance through `nonlinearity`, as torch's."""
    if nonlinearity in ("linear", "conv1d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight (out, in, *kernel): in * kernel size, out * kernel size."""
    if tensor.ndim < 2:
        raise ValueError("fan in and fan out can not be computed for a tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """Uniform in [-bound, bound], bound = gain * sqrt(3 / fan): the variance gain^2 / fan
    (He et al. 2015). nn.Linear calls it with a = sqrt(5): bound = 1 / sqrt(fan_in)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)
