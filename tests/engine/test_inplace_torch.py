"""In-place changes of tensors in the graph, against PyTorch.

torch allows `y += b`, `y *= c` and `y[idx] = v` on a tensor made by an op, records
the change as a node, and refuses backward only when a value some node saved for
it was changed. Each function below is written once and runs on both libraries
(the `check` fixture builds the same leaves, pushes one random upstream gradient
through both, and compares the outputs and every leaf's gradient).
"""
import numpy as np
import pytest
import torch

import tinygrad_wave as tw
from tinygrad_wave import Tensor, no_grad

from conftest import host

MODIFIED = "modified by an in-place operation"


def non_leaf_add(x, b):
    y = x * 1.5
    y += b
    return y * y  # reads y's new value


def non_leaf_sub_mul_div(x, b, c):
    y = x.tanh()
    z = y * 2.0  # Mul saves 2.0 for y's gradient, not y: changing y below does not matter to it
    y = y * 1.0  # (tanh saved its output: change a copy)
    y -= b
    y *= c
    y /= c + 3.0
    return y + z


def an_earlier_reader_keeps_its_edge(x):
    y = x * 1.0
    z = y * 2.0  # reads y before the change: its gradient goes to y's old node
    y *= 3.0
    return z + y


def item_assignment(x, v):
    y = x * 2.0
    y[1] = v[0]
    y[:, 2:] = v[1:3] * 3.0  # broadcast along the rows
    y[[0, 2], 0] = v[3:5]
    return y.exp()


def mask_assignment(x, v):
    y = x + 0.0
    y[x > 0] = 0.5 * v.sum()
    return y * x


def view_in_place(x, b):
    y = x * 1.0
    row = y[1]  # a view of y
    row += b  # changes y's memory, and y's graph
    return y.sum(0) * row.sum()  # y and the view both read the new values


def view_of_view(x, b):
    y = x * 1.0
    rows = y[1:]
    cell = rows[0, 1:3]
    cell *= b
    return y.exp() + rows.sum()


def base_changed_under_a_live_view(x, b):
    y = x * 1.0
    row = y[0]  # taken before the change below: torch reads it again from y's new value
    y *= b
    return row * 2.0 + y.sum(0)


def leaf_without_grad_takes_a_gradient(x):
    t = x.detach() * 0.0  # zeros outside the graph
    t += x * 3.0
    t[0] -= x[1]
    return t


def one_element_is_a_view(x, b):
    y = x * 1.0
    cell = y[1, 2]  # a 0-d view, as torch's: its change is y's
    cell *= b[0]
    return y * y


@pytest.mark.parametrize("fn, shapes", [
    (one_element_is_a_view, [(3, 4), (1,)]),
    (non_leaf_add, [(3, 4), (4,)]),
    (non_leaf_sub_mul_div, [(3, 4), (3, 1), (4,)]),
    (an_earlier_reader_keeps_its_edge, [(3, 4)]),
    (item_assignment, [(3, 4), (5,)]),
    (mask_assignment, [(3, 4), (2,)]),
    (view_in_place, [(3, 4), (4,)]),
    (view_of_view, [(3, 4), (2,)]),
    (base_changed_under_a_live_view, [(3, 4), (4,)]),
    (leaf_without_grad_takes_a_gradient, [(2, 3)]),
], ids=lambda v: getattr(v, "__name__", ""))
def test_in_place_in_the_graph_matches_torch(check, fn, shapes):
    check(fn, fn, *(check.normal(*s) + 0.5 for s in shapes))


def test_makemore_part_4_accumulates_rows_in_place(check):
    """Part 4's `dC[ix] += demb[k, j]` outside no_grad: dC (a leaf without grad) becomes
    a function of demb, row by row, repeated rows summed; as torch, so is its gradient."""
    Xb = np.array([[1, 0, 1], [2, 1, 1]])

    def accumulate(demb):
        dC = zeros_rows(demb, 3)
        for k in range(Xb.shape[0]):
            for j in range(Xb.shape[1]):
                ix = Xb[k, j]
                dC[ix] += demb[k, j]
        return dC

    check(accumulate, accumulate, check.normal(2, 3, 4))


def zeros_rows(like, rows):
    """A (rows, features) tensor of zeros that needs no grad, in like's library and dtype."""
    if isinstance(like, torch.Tensor):
        return torch.zeros((rows, like.shape[-1]), dtype=like.dtype)
    return tw.zeros((rows, like.shape[-1]), dtype=like.dtype, device=like.device)


def test_retain_grad_follows_the_newest_value(device):
    """h.retain_grad() and then h += 1: h.grad is d loss / d (the new h), as torch gives."""
    values = np.array([0.5, -1.0, 2.0])
    grads = []
    for lib, make in ((tw, lambda a: Tensor(a, requires_grad=True, device=device)),
                      (torch, lambda a: torch.tensor(a, requires_grad=True))):
        x = make(values)
        h = x * 2.0
        h.retain_grad()
        h += 1.0
        (h * h).sum().backward()
        grads.append((host(h.grad), host(x.grad)))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("change", ["+=", "item assignment"])
def test_a_saved_value_changed_in_place_refuses_backward_as_torch_does(device, change):
    """exp saves its output; Mul saves each input for the other's gradient."""
    for lib, make in ((tw, lambda a: Tensor(a, requires_grad=True, device=device)),
                      (torch, lambda a: torch.tensor(a, requires_grad=True))):
        x, w = make(np.ones(3)), make(np.full(3, 2.0))
        y = x.exp()
        z = y * w  # w's gradient reads y
        if change == "+=":
            y += 1.0
        else:
            y[0] = 5.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation|" + MODIFIED) as excinfo:
            z.sum().backward()
        if lib is tw:
            assert "Mul" in str(excinfo.value) or "Exp" in str(excinfo.value)


def test_a_change_no_backward_reads_is_allowed_as_in_torch(device):
    """y = a * 2 reads neither a nor y for a's gradient (only the constant 2)."""
    results = []
    for make in (lambda v: Tensor(v, requires_grad=True, device=device),
                 lambda v: torch.tensor(v, requires_grad=True)):
        a = make(np.array([1.0, 2.0, 3.0]))
        y = a * 1.0
        z = y * 2.0
        y += 10.0
        z.sum().backward()
        results.append(host(a.grad))
    np.testing.assert_array_equal(*results)


def test_a_view_of_a_parameter_is_refused_outside_no_grad(device):
    W = Tensor(np.ones((3, 2)), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="a view of a leaf tensor that requires grad"):
        row = W[0]
        row += 1.0
    np.testing.assert_array_equal(W.numpy(), np.ones((3, 2)))
    with no_grad():
        row = W[0]
        row += 1.0
    np.testing.assert_array_equal(W.numpy()[0], [2.0, 2.0])
    assert W.is_leaf and W.requires_grad


def test_one_element_shares_memory_both_ways_as_in_torch(device):
    for lib, make in ((torch, torch.tensor), (tw, lambda v: Tensor(v, device=device))):
        y = make([1.0, 2.0, 3.0])
        cell = y[1]
        cell += 5
        assert y.tolist() == [1.0, 7.0, 3.0], lib.__name__
        y[1] = 0.5
        assert cell.item() == 0.5, lib.__name__


@pytest.mark.parametrize("base_is_a_leaf", [False, True])
def test_a_view_made_under_no_grad_is_refused_in_place_with_grad_on_as_in_torch(device, base_is_a_leaf):
    for lib, make in ((torch, torch.tensor), (tw, lambda v, **k: Tensor(v, device=device, **k))):
        x, w = make([1.0, 2.0, 3.0], requires_grad=True), make([1.0, -8.0], requires_grad=True)
        y = x if base_is_a_leaf else x * 1
        with lib.no_grad():
            view = y[0:2]
        with pytest.raises(RuntimeError, match="(?i)a view was created in no_grad mode"):
            view *= w


def test_grad_accumulates_in_place_as_in_torch(device):
    """A .grad kept across a second backward, and a buffer assigned to .grad, hold the sum."""
    results = []
    for lib, make in ((torch, torch.tensor), (tw, lambda v, **k: Tensor(v, device=device, **k))):
        p = make([1.0, 2.0], requires_grad=True)
        (p * p).sum().backward()
        kept = p.grad
        (p * 3.0).sum().backward()
        buffer = make([10.0, 10.0])
        p.grad = buffer
        (p * p).sum().backward()
        assert p.grad is buffer and kept is not buffer, lib.__name__
        results.append([host(kept), host(buffer)])
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[1], [[5.0, 7.0], [12.0, 14.0]])


def a_gradient_shared_by_two_inputs(a, x):
    h = x * 1.0
    twice = a * 2.0  # a's second use, made before the sum: its gradient reaches a.grad last
    return (a + h) * 3.0 + twice  # Add hands one array to a.grad and to h's node: summing must not change it


def test_accumulating_into_a_leaf_leaves_a_gradient_it_shares_alone(check):
    check(a_gradient_shared_by_two_inputs, a_gradient_shared_by_two_inputs, check.normal(2, 3), check.normal(2, 3))


def test_named_in_place_methods_as_torch(device):
    """p.grad.zero_() and friends, and nn.init's way of drawing weights under no_grad."""
    results = []
    for lib, make in ((torch, torch.ones), (tw, lambda *s, **k: tw.ones(*s, device=device, **k))):
        g = lib.Generator().manual_seed(1)
        p = make(20, requires_grad=True)
        (p * p).sum().backward()
        grad = p.grad
        assert grad.zero_() is grad and grad.fill_(2.5) is grad and grad.add_(make(20), alpha=2) is grad
        assert grad.sub_(make(20)) is grad and grad.mul_(4) is grad and grad.div_(2) is grad
        with lib.no_grad():
            drawn = [p.normal_(generator=g).tolist(), p.uniform_(-1, 1, generator=g).tolist(),
                     p.normal_(2.0, 0.5, generator=g).tolist()]  # (lists: torch's numpy() shares memory)
        results.append([grad.tolist(), *drawn])
        with pytest.raises(RuntimeError, match="leaf .* requires grad .* in-place"):
            p.zero_()
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_array_equal(results[1][0], np.full(20, 7.0))  # ((2.5 + 2 * 1 - 1) * 4) / 2


def test_clamp_in_place_inside_the_graph_as_torch(check):
    """h.clamp_(lo, hi) on a computed tensor: its gradient flows through the clamp (0 where a
    bound replaced the value), as torch's."""
    def clamped(x, w):
        h = x * w
        h.clamp_(-0.5, 0.7)
        return h * w
    check(clamped, clamped, check.normal(3, 4), check.normal(3, 4))


def test_data_of_another_shape_is_taken_as_in_torch(device):
    for lib, make in ((torch, torch.ones), (tw, lambda *s, **k: tw.ones(*s, device=device, **k))):
        p = make(3, requires_grad=True)
        p.data = make(2, 3)
        assert tuple(p.shape) == (2, 3) and p.requires_grad and p.is_leaf, lib.__name__


def test_an_integer_tensor_refuses_a_float_result_in_place(device):
    """As torch: `counts += 0.5` on an int tensor cannot hold the result."""
    counts = tw.zeros((2, 2), dtype=tw.int32, device=device)
    counts[0, 1] += 1  # makemore part 1's N[ix1, ix2] += 1 stays int32
    assert counts.dtype == np.int32 and counts.numpy().tolist() == [[0, 1], [0, 0]]
    with pytest.raises(RuntimeError, match="int32"):
        counts += 0.5
    with pytest.raises(RuntimeError):
        torch.zeros((2, 2), dtype=torch.int32).add_(0.5)


def test_data_changes_in_place_outside_the_graph(device):
    """`W.data += -lr * W.grad` (part 1): W stays a leaf, same memory, new values."""
    W = Tensor(np.ones(3), requires_grad=True, device=device)
    (W * W).sum().backward()
    memory = W._data
    W.data += -0.1 * W.grad
    assert W.is_leaf and W.requires_grad and W._data is memory and W.grad_fn is None
    np.testing.assert_allclose(W.numpy(), [0.8, 0.8, 0.8])
