"""teach.draw_dot: the graph that made a tensor, drawn as micrograd's draw_dot draws it.

One box per op (its name and output shape) and one per leaf (its name, or its
shape), each with statistics of its data and, once backward has run, of its
gradient: every leaf's and every intermediate's that called retain_grad(). An
op's output shows its data while the code still holds it (a name, a layer's
.out): the graph itself keeps only what backward reads, as torch's does, so an
intermediate the code dropped is freed and its box shows its shape alone.
Arrows go from inputs to the op that used them, so the loss is on the right.
To draw gradients the graph must survive backward: loss.backward(retain_graph=True).
"""
import functools

import numpy as np

from .. import backend
from ..makemore_layers import Module

INSTALL_DOT = ("drawing the graph needs Graphviz's `dot` program, which is not on the PATH: install it "
               "with `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS) or "
               "`conda install graphviz`. The graph's DOT text is in .source meanwhile.")


@functools.cache
def _digraph_class():
    """graphviz.Digraph, imported on first use, whose rendering says how to install `dot`."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("draw_dot needs the graphviz Python package: pip install graphviz "
                          "(or pip install -e '.[teach]')") from None

    class DotNotFound(graphviz.ExecutableNotFound):
        def __init__(self):
            RuntimeError.__init__(self, INSTALL_DOT)

    class Digraph(graphviz.Digraph):
        def __repr__(self):  # shown where the picture cannot be: say what there is
            return f"<draw_dot graph of {self.source.count('label=')} boxes: .source is its DOT text>"

        def pipe(self, *args, **kwargs):  # Jupyter's inline display renders through pipe
            try:
                return super().pipe(*args, **kwargs)
            except graphviz.ExecutableNotFound:
                raise DotNotFound() from None

        def render(self, *args, **kwargs):
            try:
                return super().render(*args, **kwargs)
            except graphviz.ExecutableNotFound:
                raise DotNotFound() from None

    return Digraph


def _stats(label, array):
    """'data 3.296' for one number, 'data [1 -2.5]' for a few, else 'data mean 0.01 std 0.98'."""
    a = backend.to_host(array).astype(np.float64)
    if a.size == 1:
        return f"{label} {a.item():.4g}"
    if a.size <= 4:
        return f"{label} [{' '.join(f'{v:.4g}' for v in a.reshape(-1))}]"
    return f"{label} mean {a.mean():.3g} std {a.std():.3g}"


def _escape(text):
    """Text for one field of a record-shaped node, whose syntax uses {}|<> and backslash."""
    for ch in "\\{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def _fields(title, shape, t):
    """The record label: title (when there is one), shape, and the statistics of tensor t's
    data and gradient (None: an intermediate the code no longer holds, freed)."""
    fields = [title] if title else []
    fields.append(f"shape {tuple(shape)}")
    if t is not None:
        fields.append(_stats("data", t._data))
        if t.grad is not None:
            fields.append(_stats("grad", t.grad._data))
    return "{" + " | ".join(map(_escape, fields)) + "}"


def _labels(names):
    """id(tensor) -> label, from a dict {tensor: label} or a Module's parameter names."""
    if names is None:
        return {}
    if isinstance(names, Module):
        return {id(t): name for name, t, _ in names.named_tensors()}
    return {id(t): label for t, label in names.items()}


def _input_box(made, parent):
    """(key, tensor, node, shape) of a box: a leaf's is the tensor itself; an op's output is
    keyed by its node, and is the tensor while the code holds it (None once freed: a node
    keeps only an autograd.Intermediate of what another op made)."""
    if parent is None:
        return id(made), made, None, made.shape
    return id(parent), made.tensor(), parent, made.shape


def draw_dot(root, names=None, rankdir="LR"):
    """A graphviz.Digraph of every op and leaf that `root` depends on (Jupyter shows it
    inline; .render() writes a file; .source is the DOT text). `names`: a dict
    {tensor: label}, or a Module to label its parameters with their dotted names.
    rankdir "LR" draws left to right, as micrograd; "TB", top to bottom, suits a deep network."""
    labels = _labels(names)
    dot = _digraph_class()(graph_attr={"rankdir": rankdir}, node_attr={"shape": "record", "fontsize": "10"})
    first = (id(root) if root.grad_fn is None else id(root.grad_fn), root, root.grad_fn, root.shape)
    seen, stack = {first[0]}, [first]
    while stack:  # an explicit stack: a deep graph would pass Python's recursion limit
        key, t, node, shape = stack.pop()
        label = labels.get(id(t)) if t is not None else None
        if node is None:
            color = "lightblue" if t.requires_grad else "white"  # a parameter or input, or a constant
            dot.node(str(key), _fields(label, shape, t), style="filled", fillcolor=color)
            continue
        if node.inputs is None:
            raise RuntimeError("the graph was freed by backward: call loss.backward(retain_graph=True) "
                               "to draw it after backward, or draw it before")
        title = f"{label} = {node.name}" if label else node.name
        dot.node(str(key), _fields(title, shape, t), style="filled", fillcolor="lightyellow")
        for i, (made, parent) in enumerate(zip(node.inputs, node.parents)):
            box = _input_box(made, parent)
            # the first input is the data path (x in x @ W, batch norm's x): a heavy edge draws
            # it straight, so the chain of ops stays in one column and parameters join from the side
            dot.edge(str(box[0]), str(key), weight="10" if i == 0 else "1")
            if box[0] not in seen:
                seen.add(box[0])
                stack.append(box)
    return dot
