"""The graph: what a node is, how one is recorded, and how backward walks it.

A node is one call of an op (a Function subclass). It remembers its inputs
and whatever its forward saved, and nothing about its output, so a graph
is a chain of references from the loss back to the leaves, and dropping the
loss frees it. This file is the only place that walks the graph.
"""
from contextlib import contextmanager

_grad_enabled = True


@contextmanager
def no_grad():
    """Inside the block, ops record no nodes and outputs need no grad."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Function:
    """One op. Subclasses write `forward(self, *arrays, **options)` returning
    an array, and `backward(self, grad)` returning one gradient per input
    (None for an input that needs none). `self.xp` is the array module of the
    inputs' device; `self.needs_grad[i]` says whether input i wants a grad."""
    __slots__ = ("xp", "inputs", "needs_grad")  # saved arrays go in __dict__

    @property
    def name(self):
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **options):
        from .tensor import Tensor
        node = cls()
        first = inputs[0]
        node.xp = first.xp
        out = node.forward(*(t.data for t in inputs), **options)
        if _grad_enabled and any(t.requires_grad for t in inputs):
            node.inputs = inputs
            node.needs_grad = tuple(t.requires_grad for t in inputs)
            return Tensor._from_op(out, first.device, node)
        return Tensor._from_op(out, first.device, None)

    def release(self):
        """Drop inputs and saved arrays once backward has used them."""
        self.__dict__.clear()
        self.inputs = None

    def __repr__(self):
        return f"<{self.name}>"


def topological_order(root):
    """Nodes reachable from `root`, each after every node that consumes it.

    An explicit stack instead of recursion: a graph thousands of nodes deep
    (an RNN unrolled, a long chain of adds) would pass Python's recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        if node.inputs is None:
            raise RuntimeError(
                "backward through a graph that was already freed: a second backward "
                "needs a second forward pass")
        visited.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t.grad_fn is not None and id(t.grad_fn) not in visited:
                stack.append((t.grad_fn, False))
    order.reverse()  # root first: every consumer before what it consumes
    return order


def backward(root_tensor, grad):
    """Push `grad` (d loss / d root) back through the graph into every leaf's .grad.

    Gradients for a node's output are summed over all its consumers before the
    node runs its own backward: a tensor used twice gets the sum of both paths.
    """
    root = root_tensor.grad_fn
    if root is None:
        root_tensor._accumulate(grad)
        return
    order = topological_order(root)
    pending = {id(root): grad}
    for node in order:
        grad = pending.pop(id(node))
        input_grads = node.backward(grad)
        for t, needs, g in zip(node.inputs, node.needs_grad, input_grads):
            if not needs or g is None:
                continue
            if t.grad_fn is None:
                t._accumulate(g)
            else:
                key = id(t.grad_fn)
                pending[key] = g if key not in pending else pending[key] + g
        node.release()
