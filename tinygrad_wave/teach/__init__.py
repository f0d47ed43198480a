"""Teaching tools: look inside the engine while it trains.

    cmp              a hand-derived gradient against the engine's (makemore part 4)
    Table            rows (cmp's, the stats') printed with their columns lined up
    backward_steps   backward one node at a time, with each op's derivation
    draw_dot         the graph behind a tensor, with data and gradients (micrograd)
    summary          each layer's output shape and parameters
    trace_shapes     every op run inside a block, its layer and its shapes (tinygrad's DEBUG=2)
    activation_stats, gradient_stats, weight_stats, update_ratios, and plot_* of each
                     part 3's health checks of a network in training
    TrainingDiagnostics
                     the same, recorded along a training loop (scripts/train.py --diagnostics)
    save_figure      a figure drawn by a function of its axes, written to a PNG file

Nothing in the engine imports this package; graphviz and matplotlib are
imported only by the functions that draw.
"""
from .cmp import Comparison, cmp
from .diagnostics import (activation_stats, gradient_stats, retain_layer_grads, update_ratios,
                          weight_stats)
from .graph import draw_dot
from .plots import plot_activations, plot_gradients, plot_update_ratios, plot_weights, save_figure
from .training_diagnostics import TrainingDiagnostics
from .steps import Step, backward_steps
from .summary import summary
from .table import Table
from .trace import OpShapes, ShapeTrace, trace_shapes

__all__ = ["cmp", "Comparison", "backward_steps", "Step", "draw_dot", "summary", "Table", "activation_stats",
           "gradient_stats", "weight_stats", "update_ratios", "retain_layer_grads", "plot_activations",
           "plot_gradients", "plot_weights", "plot_update_ratios", "save_figure", "TrainingDiagnostics",
           "trace_shapes", "ShapeTrace", "OpShapes"]
