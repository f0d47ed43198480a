"""Teaching tools: look inside the engine while it trains.

    cmp        a hand-derived gradient against the engine's (makemore part 4)
    draw_dot   the graph behind a tensor, with data and gradients (micrograd)
    summary    each layer's output shape and parameters

Nothing in the engine imports this package; graphviz is imported only by draw_dot.
"""
from .cmp import Comparison, cmp
from .graph import draw_dot
from .summary import summary

__all__ = ["cmp", "Comparison", "draw_dot", "summary"]
