"""retain_graph and retain_grad, as in torch.

backward(retain_graph=True) keeps every node and what it saved, so a second
backward runs the same backward passes again and adds the same gradients into
.grad once more: twice the gradient of one call (to rounding). An op that
wrote into its saved arrays during backward (CrossEntropy once did) would give
something else the second time. Without retain_graph, the graph is freed.

retain_grad() makes a non-leaf keep its gradient in .grad, like a leaf.
"""
import numpy as np
import pytest

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, no_grad, where

from conftest import host


def ids(values, device):
    return Tensor(np.array(values), device=device)


# every op, the fused ones included; (fn, input shapes). Inputs are drawn from [0.5, 2]
# (log, sqrt, pow and division are safe) and shifted where an op needs both signs.
EVERY_OP = {
    "add": (lambda a, b: a + b, [(3, 1, 2), (4, 1)]),
    "sub": (lambda a, b: a - b, [(), (2, 3)]),
    "mul": (lambda a, b: a * b, [(2, 3), (3,)]),
    "div": (lambda a, b: a / b, [(2, 1), (1, 3)]),
    "neg": (lambda x: -x, [(3,)]),
    "pow": (lambda x: x ** -1.5, [(2, 3)]),
    "exp": (lambda x: x.exp(), [(2, 3)]),
    "log": (lambda x: x.log(), [(2, 3)]),
    "log10": (lambda x: x.log10(), [(2, 3)]),
    "sqrt": (lambda x: x.sqrt(), [(2, 3)]),
    "abs": (lambda x: (x - 1.25).abs(), [(2, 3)]),
    "tanh": (lambda x: (x - 1.2).tanh(), [(2, 3)]),
    "sigmoid": (lambda x: (x - 1.2).sigmoid(), [(2, 3)]),
    "relu": (lambda x: (x - 1.25).relu(), [(2, 3)]),
    "clone": (lambda x: x.clone(), [(2, 3)]),
    "float, double": (lambda x: x.float().double(), [(2, 3)]),
    "sum": (lambda x: x.sum((0, 2), keepdim=True), [(2, 3, 2)]),
    "mean": (lambda x: x.mean(-1), [(2, 3, 2)]),
    "var": (lambda x: x.var(1), [(2, 3, 2)]),
    "std": (lambda x: x.std((0, 2), correction=0), [(2, 3, 2)]),
    "max all": (lambda x: x.max(), [(2, 3)]),
    "max dim": (lambda x: x.max(1).values, [(2, 3)]),
    "min dim keepdim": (lambda x: x.min(0, keepdim=True).values, [(2, 3)]),
    "view": (lambda x: x.view(3, -1), [(2, 3, 2)]),
    "transpose": (lambda x: x.transpose(0, -1), [(2, 3, 1)]),
    "slice": (lambda x: x[1:, ::2], [(3, 5)]),
    "gather repeated": (lambda W: W[ids([[0, 2, 2], [1, 0, 0]], W.device)], [(3, 2)]),
    "mixed index": (lambda x: x[range(3), [1, 1, 0]], [(3, 2)]),
    "matmul": (lambda a, b: a @ b, [(2, 3, 2), (2, 5)]),
    "batched matmul": (lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    "cross_entropy": (lambda z: F.cross_entropy(z - 1.2, ids([2, 0, 2, 1], z.device)), [(4, 3)]),
    "softmax": (lambda x: F.softmax(x, -1), [(3, 4)]),
    "batch_norm": (lambda x, g, b: F.batch_norm(x, g, b, (0, 1)), [(2, 3, 2), (2,), (2,)]),
    "batch_norm with running buffers": (lambda x, g, b: F.batch_norm(
        x, g, b, 0, running_mean=Tensor(np.zeros(2), device=x.device),
        running_var=Tensor(np.ones(2), device=x.device)), [(4, 2), (2,), (2,)]),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, dilation=2), [(2, 5, 3), (2, 3, 4), (4,)]),
    "dropout": (lambda x: F.dropout(x, 0.5), [(4, 5)]),
    "masked_fill": (lambda x: x.masked_fill(Tensor(np.eye(3, dtype=bool), device=x.device), float("-inf")).exp(),
                    [(2, 3, 3)]),
    "where": (lambda a, b: where(Tensor(np.array([True, False, True]), device=a.device), a, b), [(2, 3), (3,)]),
    "tril": (lambda x: x.tril(), [(3, 3)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), [(3, 4)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "gelu": (lambda x: F.gelu(x - 1.2, approximate="tanh"), [(2, 3)]),
    "reused node": (lambda x: (lambda h: h * h - h.tanh())(x * x), [(2, 3)]),
    "expand": (lambda x: x.expand(2, 3, 5), [(3, 1)]),
    "roll": (lambda x: x.roll((1, -2), (0, 1)), [(2, 3)]),
    "split": (lambda x: x.split([1, 4], 1)[1], [(3, 5)]),
    "topk": (lambda x: x.topk(2).values, [(3, 5)]),
}


def assert_twice(got, expected, what):
    """Equal but for rounding: an input used twice sums two paths into .grad, and
    (a + b) + a + b need not round like 2 (a + b). A saved array changed by the first
    backward would be off by far more."""
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15, err_msg=what)


@pytest.mark.parametrize("fn, shapes", EVERY_OP.values(), ids=EVERY_OP.keys())
def test_two_backward_calls_give_twice_the_gradient(device, rng, fn, shapes):
    inputs = [Tensor(rng.uniform(0.5, 2.0, s), requires_grad=True, device=device) for s in shapes]
    out = fn(*inputs)
    g = rng.standard_normal(out.shape)
    out.backward(g, retain_graph=True)
    once = [host(x.grad) for x in inputs]
    assert all(np.abs(grad).max() > 0 for grad in once)
    out.backward(g, retain_graph=True)
    for i, (x, grad) in enumerate(zip(inputs, once)):
        assert_twice(host(x.grad), 2 * grad, f"input {i} after the second backward")
    out.backward(g)  # without retain_graph: works once more, then the graph is gone
    for x, grad in zip(inputs, once):
        assert_twice(host(x.grad), 3 * grad, "third backward")
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        out.backward(g)


def test_a_second_backward_without_retain_graph_raises(device):
    x = Tensor(np.ones(3), requires_grad=True, device=device)
    loss = F.cross_entropy((x * 2).view(1, 3), [1])
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()


def test_retain_graph_frees_nothing_and_keeps_the_saved_arrays(device):
    x = Tensor(np.linspace(0.1, 1, 6).reshape(2, 3), requires_grad=True, device=device)
    loss = F.cross_entropy(x.tanh() @ x.T, [0, 1])
    loss.backward(retain_graph=True)
    node = loss.grad_fn
    saved = {k: host(v).copy() for k, v in vars(node).items() if hasattr(v, "shape")}
    loss.backward(retain_graph=True)
    assert node.inputs is not None
    for k, v in saved.items():
        np.testing.assert_array_equal(host(vars(node)[k]), v, err_msg=f"CrossEntropy's saved {k} changed")


# --- retain_grad ---------------------------------------------------------------------------------------

def chain(device):
    """x -> h = tanh(x * w) -> loss, with h used twice."""
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    w = Tensor(rng.standard_normal(3), requires_grad=True, device=device)
    pre = x * w
    h = pre.tanh()
    loss = (h * h).sum() + h.mean()
    return x, w, pre, h, loss


def test_retain_grad_on_a_non_leaf_keeps_its_gradient(device):
    x, w, pre, h, loss = chain(device)
    h.retain_grad()
    loss.backward()
    hv = host(h)
    np.testing.assert_allclose(host(h.grad), 2 * hv + 1 / hv.size, rtol=1e-14)  # d(h^2 + h/n)/dh, both uses summed
    assert type(h.grad) is type(x.grad) and h.grad.dtype == h.dtype and h.grad.shape == h.shape
    assert pre.grad is None and loss.grad is None  # non-leaves that did not ask keep nothing


def test_retain_grad_on_a_leaf_changes_nothing(device):
    x, w, pre, h, loss = chain(device)
    x.retain_grad()
    loss.backward()
    x2, w2, _, _, loss2 = chain(device)
    loss2.backward()
    np.testing.assert_array_equal(host(x.grad), host(x2.grad))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2), device=device).retain_grad()


def test_a_retained_non_leaf_accumulates_across_backward_calls(device):
    x, w, pre, h, loss = chain(device)
    pre.retain_grad()
    loss.backward(retain_graph=True)
    once = host(pre.grad).copy()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(host(pre.grad), 2 * once)
    pre.grad = None  # zeroed like a leaf's
    (pre * 3).sum().backward()  # another loss through the kept graph of pre
    np.testing.assert_array_equal(host(pre.grad), np.full(pre.shape, 3.0))


def test_retain_grad_on_the_root_and_the_callers_array_stays_its_own(device):
    x = Tensor(np.ones((2, 2)), requires_grad=True, device=device)
    y = x * 2
    y.retain_grad()
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    y.backward(g)
    g[0, 0] = 100.0
    np.testing.assert_array_equal(host(y.grad), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(host(x.grad), [[2, 4], [6, 8]])
    y.grad[...] = 0  # the user may change it in place; x's grad is another array
    np.testing.assert_array_equal(host(x.grad), [[2, 4], [6, 8]])


def test_retain_grad_across_a_cast_keeps_each_tensors_dtype(device):
    x = Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    y = x.double()
    y.retain_grad()
    (y * 2).sum().backward()
    assert y.grad.dtype == np.float64 and x.grad.dtype == np.float32


def test_retain_grad_under_no_grad_is_an_error_free_no_op(device):
    """A tensor made under no_grad is a leaf that needs no grad: nothing to retain."""
    x = Tensor(np.ones(3), requires_grad=True, device=device)
    with no_grad():
        y = x * 2
    assert y.is_leaf and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.retain_grad()
