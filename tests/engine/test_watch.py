"""watch.py, the seam: what the engine tells a watcher, and that a default Watcher changes nothing."""
import numpy as np
import pytest

from tinygrad_wave import Tensor, manual_seed, no_grad, rand, watch
from tinygrad_wave import makemore_layers as nn
from tinygrad_wave.optim import SGD


class Told(watch.Watcher):
    """Every event, by name, with what names it."""

    def __init__(self):
        self.events = []

    def op_applied(self, node, inputs, options, out): self.events.append(("op", node.name))
    def backward_walked(self, root, grad, retain_graph): self.events.append(("backward", root.shape))
    def tensor_read(self, tensor, how): self.events.append(("read", how))
    def tensor_written(self, tensor, how): self.events.append(("written", how))
    def array_changed(self, tensor, how, index, value): self.events.append(("changed", how, index))
    def grad_set(self, tensor, value): self.events.append(("grad", value is None))
    def host_randomness_drawn(self, what): self.events.append(("random", what))
    def attribute_set(self, obj, name, value): self.events.append(("set", type(obj).__name__, name))

    def module_called(self, module, args):
        self.events.append(("module", type(module).__name__))
        return super().module_called(module, args)

    def method_called(self, method, obj, args):
        self.events.append(("call", method.__name__))
        return super().method_called(method, obj, args)


def test_each_kind_of_event_reaches_the_watcher_in_order():
    layer = nn.Linear(3, 2)
    opt = SGD(layer.parameters(), lr=0.1)
    with watch.watching(Told()) as told:
        opt.lr = 0.05
        loss = layer(Tensor(np.ones((4, 3), dtype=np.float32))).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        with no_grad():
            layer.bias += 1.0
            layer.weight[0, 1:] = 2.0
        layer.weight.requires_grad = True
        rand(2)
    # (the layer's last output, layer.out, is kept without a "set": it is for looking at, not state)
    assert told.events == [("set", "SGD", "lr"), ("module", "Linear"), ("op", "MatMul"), ("op", "Add"),
                           ("op", "Sum"), ("call", "zero_grad"), ("backward", ()), ("call", "step"), ("read", ".item()"),
                           ("changed", "+=", ...), ("set", "Linear", "bias"),
                           ("changed", "item assignment", (0, slice(1, None))), ("written", "requires_grad"),
                           ("random", "a random draw from a Generator")]
    assert watch.watcher is None


def test_a_default_watcher_changes_no_result():
    manual_seed(0)
    layer = nn.Linear(3, 2)
    x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    plain = layer(x).sum()
    plain.backward()
    grad = layer.weight.grad.numpy().copy()
    layer.weight.grad = None
    with watch.watching(watch.Watcher()):
        watched = layer(x).sum()
        watched.backward()
    assert watched.item() == plain.item() and layer.weight.grad.numpy().tobytes() == grad.tobytes()


def test_the_watcher_before_comes_back_after_an_error():
    outer = Told()
    with watch.watching(outer):
        with pytest.raises(ZeroDivisionError):
            with watch.watching(Told()):
                1 / 0
        assert watch.watcher is outer
    assert watch.watcher is None
