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

import tinygrad_wave
import tinygrad_wave.functional as F
from op_table import CASES
from tinygrad_wave import Tensor, no_grad

from conftest import host


def assert_twice(got, expected, what):
    """Equal but for rounding: an input used twice sums two paths into .grad, and
    (a + b) + a + b need not round like 2 (a + b). A saved array changed by the first
    backward would be off by far more."""
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15, err_msg=what)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_two_backward_calls_give_twice_the_gradient(device, rng, case):
    """Every case of tests/support/op_table.py."""
    inputs = [Tensor(a, requires_grad=True, device=device) for a in case.inputs(rng)]
    out = case.run(tinygrad_wave, *inputs)
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
