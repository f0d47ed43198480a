"""Part 3's four figures: histograms of tanh outputs, of the gradients reaching
them, of the weights' gradients, and the update-to-data ratio over training.

Each draws on `ax` (a new figure when None) and returns the axes, with a title,
labelled axes and its legend beside the plot, never over the curves. matplotlib is
imported on first use, so the engine never needs it; without a display (a
script, CI) pick a non-interactive backend first, e.g. matplotlib.use("Agg").
"""
import numpy as np

from ..makemore_layers import Tanh
from ..serialization import atomic_write
from .diagnostics import (SATURATED, activation_stats, as_float64, gradient_stats, layers_of_kind,
                          weight_stats, weights_of)

UPDATE_RATIO_GUIDE = -3  # log10 of 1e-3: updates about a thousandth of the data


def save_figure(path, draw, figsize=(10, 4), title=None):
    """draw(ax) on a new figure, with `title` over it if given, saved to `path` as a 100 dpi PNG
    written whole, then renamed into place. No pyplot, so no display or GUI backend is involved
    (a script, a job)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    draw(fig.subplots())
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))


def _axes(ax, title, xlabel, ylabel="density"):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(10, 3.5), dpi=100, layout="constrained")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def _legend(ax):
    """The legend to the right of the plot: beside the curves, not over them (a figure's
    tight or constrained layout makes room for it)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


def _histogram(ax, values, label, bins=50):
    """A density histogram drawn as a line, so that several layers share one plot."""
    density, edges = np.histogram(values, bins=bins, density=True)
    ax.plot((edges[:-1] + edges[1:]) / 2, density, label=label)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # 1e-4 ticks as 1 to 5 times 1e-4


def plot_activations(model, ax=None, kind=Tanh):
    """Histogram of each tanh layer's output; mass piled at -1 and 1 means saturation."""
    ax = _axes(ax, f"activation distribution (saturated: |t| > {SATURATED})", "tanh output")
    for (i, layer), row in zip(layers_of_kind(model, kind), activation_stats(model, kind)):
        _histogram(ax, as_float64(layer.out), f"layer {i} ({row.kind}): saturated {row.saturated:.1%}")
    _legend(ax)
    return ax


def plot_gradients(model, ax=None, kind=Tanh):
    """Histogram of the gradient reaching each tanh layer (needs retain_layer_grads)."""
    ax = _axes(ax, "gradient distribution", "gradient reaching the tanh output")
    for (i, layer), row in zip(layers_of_kind(model, kind), gradient_stats(model, kind)):
        _histogram(ax, as_float64(layer.out.grad), f"layer {i} ({row.kind}): std {row.std:.2e}")
    _legend(ax)
    return ax


def plot_weights(model, ax=None):
    """Histogram of each 2-D parameter's gradient, with its grad:data ratio."""
    ax = _axes(ax, "weights gradient distribution", "gradient of a weight")
    for (name, p), row in zip(weights_of(model), weight_stats(model)):
        _histogram(ax, as_float64(p.grad), f"{name} {row.shape}: grad:data {row.grad_to_data:.2e}")
    _legend(ax)
    return ax


def plot_update_ratios(history, ax=None, steps=None):
    """log10 update-to-data ratio per weight over training; `history` is a list of
    update_ratios(model, lr) dicts, one per step (or one per entry of `steps`, the
    step numbers they were taken at). The dashed line is the 1e-3 guide."""
    ax = _axes(ax, "update-to-data ratio", "step", "log10 std(lr * grad) / std(data)")
    names = list(history[0]) if history else []
    steps = range(len(history)) if steps is None else steps
    for name in names:
        ax.plot(steps, [ratios[name] for ratios in history], label=name)
    ax.axhline(UPDATE_RATIO_GUIDE, color="k", linestyle="--", label="1e-3 guide")
    _legend(ax)
    return ax
