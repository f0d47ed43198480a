"""teach.trace_shapes: every op the engine runs, with its inputs' shapes and its output's,
as tinygrad's DEBUG=2 lists its kernels. A watcher on the engine's seam (watch.py):

    with teach.trace_shapes() as trace:
        loss = F.cross_entropy(model(Xb), Yb)
    print(trace)

    Embedding          Index        (27, 24) -> (32, 8, 24)
    FlattenConsecutive Reshape      (32, 8, 24) -> (32, 4, 48)
    Linear             MatMul       (32, 4, 48), (48, 128) -> (32, 4, 128)
    ...
                       CrossEntropy (32, 27) -> ()

Each row names the layer whose forward was running (the innermost), so a shape
that goes wrong can be traced to the layer that made it; `backward` rows mark
where a walk started.
"""
from dataclasses import dataclass

from .. import watch
from .table import Row, Table


@dataclass
class OpShapes(Row):
    layer: str  # the innermost module whose forward was running, "" outside any
    op: str
    inputs: list  # each input's shape
    output: tuple

    def label(self):
        return self.layer

    def values(self):
        ins = ", ".join(str(tuple(s)) for s in self.inputs)
        return f"{self.op:<12} {ins} -> {tuple(self.output)}"


class ShapeTrace(watch.Watcher, Table):
    """The rows (OpShapes) of the ops run while it was the active watcher."""

    def __init__(self):
        Table.__init__(self)
        self.layer = ""

    def module_called(self, module, args):
        outer, self.layer = self.layer, type(module).__name__
        try:
            return module.forward(*args)
        finally:
            self.layer = outer

    def op_applied(self, node, inputs, options, out):
        self.append(OpShapes(self.layer, node.name, [t.shape for t in inputs], out.shape))

    def backward_walked(self, root, grad, retain_graph):
        self.layer = ""
        self.append(OpShapes("", "backward", [root.shape], root.shape))


def trace_shapes():
    """A context manager: inside it every op is listed, with shapes, in the trace it yields."""
    return watch.watching(ShapeTrace())
