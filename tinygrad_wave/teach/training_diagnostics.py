"""teach.TrainingDiagnostics: part 3's diagnostics, recorded along a training loop
that is not a notebook (scripts/train.py --diagnostics).

Two hooks go into the loop: before_backward(model) after each forward, so that
every layer's output keeps its gradient, and after_step(model, step, lr) after
each update, which records the update-to-data ratios (every `every` steps) and
holds on to the step's layer outputs, so that evaluations run later (which
overwrite layer.out) do not hide the last training step. Then write(folder)
saves the four figures of part 3 and returns their numbers.
"""
import math
from pathlib import Path

from .diagnostics import activation_stats, gradient_stats, retain_layer_grads, update_ratios, weight_stats
from .plots import plot_activations, plot_gradients, plot_update_ratios, plot_weights, save_figure

class TrainingDiagnostics:
    FIGURES = ("activations.png", "gradients.png", "weights.png", "update_ratio.png")

    def __init__(self, every=1, earlier=None):
        """earlier: the update_ratios that write() returned in the run's sessions before this one
        (a resumed run's log), kept ahead of this session's so the figure shows the whole run."""
        self.every = every
        self.steps, self.ratios = [], []   # update-to-data ratios: one dict per recorded step
        if earlier:
            names = [name for name in earlier if name != "step"]
            self.steps = list(earlier["step"])
            self.ratios = [{name: -math.inf if earlier[name][i] is None else earlier[name][i] for name in names}
                           for i in range(len(self.steps))]  # None: a log10 ratio of a weight that did not move
        self.model, self.last_outputs = None, None

    def before_backward(self, model):
        retain_layer_grads(model)

    def after_step(self, model, step, lr):
        self.model, self.last_outputs = model, [layer.out for layer in model.layers]
        if step % self.every == 0:
            self.steps.append(step)
            self.ratios.append(update_ratios(model, lr))

    def write(self, folder, title=None):
        """Save the FIGURES into `folder` (each written whole, then renamed into place, with
        `title` over it: which run it shows) and return their numbers for a log (strict JSON: a
        number that is not finite, such as the log10 ratio of a weight that did not move, is None).
        None when no step was recorded."""
        if self.model is None:
            return None
        self._restore_last_outputs()
        draw = (plot_activations, plot_gradients, plot_weights,
                lambda model, ax: plot_update_ratios(self.ratios, ax=ax, steps=self.steps))
        for name, plot in zip(self.FIGURES, draw):
            save_figure(Path(folder) / name, lambda ax: plot(self.model, ax=ax), title=title)
        model, names = self.model, list(self.ratios[0]) if self.ratios else []
        numbers = dict(activations=activation_stats(model).records(), gradients=gradient_stats(model).records(),
                       weights=weight_stats(model).records(),
                       update_ratios=dict(step=self.steps, **{name: [r[name] for r in self.ratios] for name in names}))
        return _finite_or_none(numbers)


    def activation_records(self):
        """activation_stats of the last training step (a TensorBoard log's), or [] before one."""
        if self.model is None:
            return []
        self._restore_last_outputs()
        return activation_stats(self.model)

    def _restore_last_outputs(self):
        for layer, out in zip(self.model.layers, self.last_outputs):
            layer.out = out  # the last training step, whatever ran after it


def _finite_or_none(value):
    """`value` with every float that is not finite (log10 of a zero ratio) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value

