"""Part 3's health checks of a network in training, as numbers.

After a training step, every layer holds its last output in `layer.out`.
Four questions tell whether the network trains well:
  - activations: does each tanh layer keep a spread of values, or is it
    saturated (|t| > 0.97, where tanh is flat and passes almost no gradient)?
  - gradients: does the gradient reaching each tanh layer keep its size, or
    does it shrink or grow layer by layer?
  - weights: how big is each weight's gradient next to the weight itself?
  - update-to-data ratio: how much does one SGD step change each weight,
    relative to its size (log10; about -3 is the rule of thumb)?
The plots of these live in plots.py.
"""
import math
from dataclasses import dataclass


from .. import backend
from ..makemore_layers import Tanh
from .table import Row, Table

host = backend.namespace("cpu")  # statistics and pictures are made from host copies

SATURATED = 0.97  # |tanh| above this is "saturated": its local gradient 1 - t^2 is below 0.06


def as_float64(t):
    """A tensor's values as a NumPy float64 copy on the host: statistics in full precision, from any device."""
    return backend.to_host(t._data).astype(host.float64)


def _std(t):
    """The standard deviation in float64, on the tensor's own device (no copy)."""
    return float(t._data.std(dtype="float64"))


def layers_of_kind(model, kind):
    """(position, layer) of every layer of `kind` in a Sequential (the last layer is the
    logits, which part 3 leaves out), each checked to have run a forward."""
    if not hasattr(model, "layers"):
        raise TypeError(f"the diagnostics read a Sequential's layers; {type(model).__name__} has no .layers")
    found = [(i, layer) for i, layer in enumerate(model.layers[:-1]) if isinstance(layer, kind)]
    for i, layer in found:
        if getattr(layer, "out", None) is None:
            raise RuntimeError(f"layer {i} ({type(layer).__name__}) has no .out: run a forward pass first")
    return found


class LayerRow(Row):
    def label(self):
        return f"layer {self.layer} ({self.kind}):"


@dataclass(frozen=True)
class ActivationStats(LayerRow):
    layer: int
    kind: str
    mean: float
    std: float
    saturated: float  # the fraction of |out| > 0.97

    def values(self):
        return f"mean {self.mean:+.2f}, std {self.std:.2f}, saturated: {self.saturated:.2%}"


@dataclass(frozen=True)
class GradientStats(LayerRow):
    layer: int
    kind: str
    mean: float
    std: float

    def values(self):
        return f"mean {self.mean:+e}, std {self.std:e}"


@dataclass(frozen=True)
class WeightStats(Row):
    name: str
    shape: tuple
    mean: float          # of the gradient, as part 3 prints it
    std: float           # of the gradient
    grad_to_data: float  # std(grad) / std(data)

    def label(self):
        return f"weight {str(self.shape):>10s} ({self.name})"

    def values(self):
        return f"| mean {self.mean:+f} | std {self.std:e} | grad:data ratio {self.grad_to_data:e}"


def activation_stats(model, kind=Tanh):
    """Per `kind` layer (Tanh), from its last output: mean, std, saturated fraction."""
    rows = Table()
    for i, layer in layers_of_kind(model, kind):
        t = as_float64(layer.out)
        rows.append(ActivationStats(i, type(layer).__name__, float(t.mean()), float(t.std()),
                                    float((host.abs(t) > SATURATED).mean())))
    return rows


def retain_layer_grads(model):
    """Call after the forward, before backward: every layer's output keeps its gradient
    (`layer.out.retain_grad()`), for gradient_stats."""
    for layer in model.layers:
        layer.out.retain_grad()


def gradient_stats(model, kind=Tanh):
    """Per `kind` layer (Tanh), the gradient that reached its output: mean, std.
    Needs retain_layer_grads(model) (or layer.out.retain_grad()) before backward."""
    rows = Table()
    for i, layer in layers_of_kind(model, kind):
        if layer.out.grad is None:
            raise RuntimeError(f"layer {i} ({type(layer).__name__}): its output has no gradient; call "
                               "teach.retain_layer_grads(model) after the forward and before backward")
        g = as_float64(layer.out.grad)
        rows.append(GradientStats(i, type(layer).__name__, float(g.mean()), float(g.std())))
    return rows


def weights_of(model):
    """(name, parameter) of the 2-D parameters: the weights of Linear and Embedding."""
    return [(name, p) for name, p, is_buffer in model.named_tensors() if not is_buffer and p.ndim == 2]


def weight_stats(model):
    """Per 2-D parameter after backward: shape, mean and std of its gradient (as part 3's
    plot shows them), and the ratio std(grad) / std(data)."""
    rows = Table()
    for name, p in weights_of(model):
        if p.grad is None:
            raise RuntimeError(f"{name} has no gradient: call weight_stats after loss.backward()")
        g_std, data_std = _std(p.grad), _std(p.data)
        rows.append(WeightStats(name, tuple(p.shape), float(p.grad._data.mean(dtype="float64")), g_std,
                                g_std / data_std if data_std else math.inf))
    return rows


def update_ratios(model, lr):
    """{name: log10(std(lr * grad) / std(data))} for each 2-D parameter: how large one SGD
    step is next to the weight. Call after every step and keep the dicts, for plot_update_ratios."""
    ratios = {}
    for name, p in weights_of(model):
        if p.grad is None:
            raise RuntimeError(f"{name} has no gradient: call update_ratios after loss.backward()")
        step_std, data_std = abs(lr) * _std(p.grad), _std(p.data)
        if step_std and data_std:
            ratios[name] = math.log10(step_std / data_std)
        else:  # a weight that does not move: minus infinity; a weight of zeros that moves: infinity
            ratios[name] = math.inf if data_std == 0 and step_std else -math.inf
    return ratios
