"""teach.backward_steps: backward one node at a time, newest first, with each
step's derivation beside it.

It is the engine's own backward loop (autograd.walk), paused after every node:
`for step in backward_steps(loss): print(step)` runs exactly the backward that
loss.backward() runs, so at the end every leaf holds the same .grad.

A walk left unfinished (a `break` out of the loop, an error in a node, the
generator closed or dropped) leaves no gradient behind: every .grad it reached
is put back as it was before the walk, so that the fresh forward and backward
its freed graph asks for give the right gradients, not a half walk's added to them.
"""
import inspect
from dataclasses import dataclass


from .. import autograd, backend
from ..tensor import Tensor

host = backend.namespace("cpu")  # statistics and pictures are made from host copies


def _norm(g):
    """The L2 norm of the whole gradient (the square root of the sum of its squared elements)."""
    return "-" if g is None else f"{float(host.linalg.norm(backend.to_host(g._data).astype(host.float64))):.4g}"


def _tensor(array):
    """A gradient as the user holds one (a Tensor outside the graph), copied: changing
    it cannot change what the walk hands on."""
    return None if array is None else Tensor._from_op(array.copy(), backend.device_of(array), None)


@dataclass(frozen=True)
class Step:
    op: str             # the op's name, e.g. "MatMul"
    grad_out: Tensor    # d loss / d output of this op
    grads_in: tuple     # d loss / d input, one Tensor per input (None where no gradient flows)
    input_shapes: tuple
    derivation: str     # the op's backward docstring: how grads_in follow from grad_out

    def __str__(self):
        shapes = ", ".join(map(str, self.input_shapes))
        return (f"{self.op:>12s}  {shapes} -> {tuple(self.grad_out.shape)}  "
                f"|grad out| {_norm(self.grad_out)}  |grads in| {', '.join(map(_norm, self.grads_in))}")  # L2 norms


def backward_steps(loss, grad=None, retain_graph=False):
    """Yield one Step per node of the graph behind `loss`, as backward runs it.
    `grad` is d L / d loss (1 for a one-element loss), as in loss.backward(grad).
    While the walk is paused at a step, the leaves it has reached hold their gradients
    so far; if it never reaches the end, every .grad is put back as it was before."""
    receivers = autograd.receivers(loss)
    # (a backward sums into the tensor that .grad holds: keep its values to put back, and the tensor)
    grads_before = [(t.grad, None if t.grad is None else t.grad._data) for t in receivers]
    walk = autograd.walk(loss, loss._root_grad(grad), retain_graph)
    finished = False
    try:
        for node, grad_out, grads_in in walk:
            yield Step(op=node.name, grad_out=_tensor(grad_out), grads_in=tuple(map(_tensor, grads_in)),
                       input_shapes=tuple(tuple(t.shape) for t in node.inputs),
                       derivation=inspect.getdoc(type(node).backward) or "")
        finished = True
    finally:
        walk.close()  # now, not when the garbage collector gets to it: the walk frees its graph
        if not finished:
            for t, (kept, values) in zip(receivers, grads_before):
                if kept is not None:
                    kept._data = values
                t.grad = kept
