"""teach.trace_shapes: each op a block runs, the layer it ran in, its shapes."""
import numpy as np
import pytest

from tinygrad_wave import Tensor, jit, teach, watch
from tinygrad_wave import makemore_layers as nn
from tinygrad_wave import functional as F


def test_each_op_is_listed_with_its_layer_and_shapes():
    model = nn.Sequential(nn.Embedding(10, 3), nn.FlattenConsecutive(2), nn.Linear(6, 5), nn.Tanh())
    X = np.random.default_rng(0).integers(0, 10, (7, 2))
    with teach.trace_shapes() as trace:
        loss = F.cross_entropy(model(X), X[:, 0] % 5)
        loss.backward()
    rows = [(r.layer, r.op, [tuple(s) for s in r.inputs], tuple(r.output)) for r in trace]
    assert rows == [("Embedding", "Index", [(10, 3)], (7, 2, 3)),
                    ("FlattenConsecutive", "Reshape", [(7, 2, 3)], (7, 6)),
                    ("Linear", "MatMul", [(7, 6), (6, 5)], (7, 5)),
                    ("Linear", "Add", [(7, 5), (5,)], (7, 5)),
                    ("Tanh", "Tanh", [(7, 5)], (7, 5)),
                    ("", "CrossEntropy", [(7, 5)], ()),
                    ("", "backward", [()], ())]
    lines = str(trace).splitlines()
    assert lines[2] == "Linear             MatMul       (7, 6), (6, 5) -> (7, 5)"
    assert lines[5].startswith(" " * len("FlattenConsecutive") + " CrossEntropy")
    assert watch.watcher is None


def test_the_trace_ends_with_its_block_even_on_an_error():
    with pytest.raises(ValueError):
        with teach.trace_shapes() as trace:
            (Tensor(np.ones(3)) * 2).sum()
            nn.Linear(4, 2)(Tensor(np.ones((3, 5))))  # 5 features into a 4-wide layer
    assert [r.op for r in trace] == ["Mul", "Sum"] and watch.watcher is None


def test_a_captured_step_traced_runs_eagerly_so_its_ops_are_seen():
    w = Tensor(np.ones(3), requires_grad=True)
    step = jit.capture(lambda x: (x * w).sum())
    for _ in range(3):
        step(np.ones(3))
    with teach.trace_shapes() as trace:
        step(np.ones(3))
    assert [r.op for r in trace] == ["Mul", "Sum"]
