"""teach.cmp: is a gradient worked out by hand the one the engine computed?

makemore part 4 checks every hand-derived gradient with one line per
intermediate: exactly equal, equal up to rounding, and the largest
difference. The engine's gradient must already be there, so an
intermediate (a non-leaf) needs `t.retain_grad()` before backward.

In an exercise the learner's gradient starts as `...` (Python's Ellipsis): cmp
then says "not yet" instead of failing, so a notebook runs before it is solved.
Several comparisons print as a teach.Table, their columns lined up.
"""
import math
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..tensor import Tensor
from .table import Row



@dataclass(frozen=True)
class Comparison(Row):
    name: str
    exact: bool     # every element equal
    approx: bool    # equal up to rounding: np.allclose(rtol=1e-5, atol=1e-8), torch.allclose's defaults
    maxdiff: float  # the largest |manual - engine|; 0 where both hold the same infinity
    written: bool = True  # False while the learner's gradient is still the placeholder `...`

    label_width = 15  # part 4's `{name:15s}`

    def label(self):
        return self.name

    def values(self):
        if not self.written:
            return "| not yet: replace the ... with your code"
        return f"| exact: {self.exact!s:5} | approximate: {self.approx!s:5} | maxdiff: {self.maxdiff}"


def cmp(name, manual, t):
    """Compare `manual` (an array or a Tensor: the learner's dL/dt) with `t.grad`;
    `manual` still `...` gives a "not yet" row."""
    if manual is Ellipsis:
        return Comparison(name=name, exact=False, approx=False, maxdiff=math.nan, written=False)
    if not isinstance(t, Tensor):
        raise TypeError(f"cmp({name!r}, ...) compares against a Tensor's .grad; got {type(t).__name__}")
    if t.grad is None:
        hint = ("it is an intermediate: call t.retain_grad() before backward, then run backward again"
                if not t.is_leaf else "it needs requires_grad=True and a backward that reaches it")
        raise RuntimeError(f"cmp({name!r}, ...): the tensor has no .grad to compare with; {hint}")
    ours = backend.to_host(manual._data if isinstance(manual, Tensor) else backend.to_array(manual))
    engine = backend.to_host(t.grad._data)
    if ours.shape != engine.shape:
        raise ValueError(f"cmp({name!r}, ...): the manual gradient has shape {tuple(ours.shape)}, "
                         f"the tensor's gradient {tuple(engine.shape)}: a gradient has its tensor's shape")
    # |ours - engine| where they differ: inf - inf would be NaN where both hold the same infinity
    diff = np.abs(np.subtract(ours, engine, out=np.zeros(ours.shape, np.result_type(ours, engine)),
                                  where=ours != engine))
    return Comparison(name=name, exact=bool(np.array_equal(ours, engine)),
                      approx=bool(np.allclose(ours, engine)),
                      maxdiff=float(diff.max()) if diff.size else 0.0)
