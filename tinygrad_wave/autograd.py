"""The graph: what a node is, how one is recorded, and how backward walks it.

A node is one call of an op (a Function subclass). It remembers its inputs
and whatever its forward saved, and nothing about its output, so a graph
is a chain of references from the loss back to the leaves, and dropping the
loss frees it. This file is the only place that walks the graph.
"""
import itertools
from contextlib import contextmanager

from . import backend

_grad_enabled = True
_creation_counter = itertools.count()  # numbers nodes in the order they are recorded


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
    inputs' device; `self.needs_grad[i]` says whether input i wants a grad.
    During backward, `out_grad` collects d loss / d output from every consumer."""
    __slots__ = ("xp", "inputs", "needs_grad", "sequence", "out_grad")  # saved arrays go in __dict__

    @property
    def name(self):
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **options):
        node = cls()
        first = inputs[0]
        node.xp = first.xp
        out = node.forward(*[t._data for t in inputs], **options)
        needs_grad = tuple([t._requires_grad for t in inputs])
        if _grad_enabled and True in needs_grad:
            node.inputs, node.needs_grad, node.sequence = inputs, needs_grad, next(_creation_counter)
            node.out_grad = None
            return type(first)._from_op(out, backend.device_of(out), node)
        return type(first)._from_op(out, backend.device_of(out), None)

    def release(self):
        """Drop inputs and saved arrays once backward has used them."""
        self.__dict__.clear()
        self.inputs = self.out_grad = None

    def __repr__(self):
        return f"<{self.name}>"


def topological_order(root):
    """Nodes reachable from `root`, each before the nodes that made its inputs.

    A node is always created after the nodes of its inputs, so its creation
    number orders the graph: collect the reachable nodes with an explicit
    stack (recursion would pass Python's limit on a graph thousands of nodes
    deep), then sort them newest first. PyTorch orders its backward the same way.
    """
    found, stack = {id(root): root}, [root]
    while stack:
        node = stack.pop()
        if node.inputs is None:
            raise RuntimeError(
                "backward through a graph that was already freed: a second backward "
                "needs a second forward pass")
        for t in node.inputs:
            parent = t.grad_fn
            if parent is not None and id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return sorted(found.values(), key=lambda node: node.sequence, reverse=True)


def backward(root_tensor, grad):
    """Push `grad` (d loss / d root) back through the graph into every leaf's .grad.

    Each node's out_grad sums the gradients from all its consumers before the
    node runs its own backward (the topological order guarantees they all ran
    first): a tensor used twice gets the sum of both paths.
    """
    root = root_tensor.grad_fn
    if root is None:
        root_tensor._accumulate(grad.copy())  # the caller's array stays the caller's
        return
    root.out_grad = grad
    given_to_leaves = {id(grad)}  # the caller's array stays the caller's
    for node in topological_order(root):
        if node.out_grad is None:  # no consumer sent a gradient (an op returned None)
            node.release()
            continue
        input_grads = node.backward(node.out_grad)
        for t, needs, g in zip(node.inputs, node.needs_grad, input_grads):
            if not needs or g is None:
                continue
            parent = t.grad_fn
            if parent is not None:
                parent.out_grad = g if parent.out_grad is None else parent.out_grad + g
                continue
            # A leaf owns its .grad, which the user may change in place. Ops may pass
            # on their upstream array or a view of it (Add, Reshape), so a view, the
            # caller's root gradient, or an array another leaf already holds is copied;
            # fresh arrays are not.
            if g.base is not None or id(g) in given_to_leaves:
                g = g.copy()
            given_to_leaves.add(id(g))
            t._accumulate(g)
        node.release()
