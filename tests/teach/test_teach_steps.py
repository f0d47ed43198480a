"""teach.backward_steps: the engine's backward, one node at a time."""
import inspect

import numpy as np
import pytest
import torch

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, manual_seed, no_grad, teach
from tinygrad_wave.models import build_model


def test_steps_come_newest_first_with_the_gradients_torch_computes(rng):
    a_np, b_np, g_np = rng.standard_normal((3, 4)), rng.standard_normal((4,)), rng.standard_normal((3, 4))
    a, b = Tensor(a_np, requires_grad=True), Tensor(b_np, requires_grad=True)
    out = (a * b).tanh() * 2.0
    steps = list(teach.backward_steps(out, g_np))
    assert [s.op for s in steps] == ["Mul", "Tanh", "Mul"]

    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    prod = ta * tb
    prod.retain_grad()
    hidden = torch.tanh(prod)
    hidden.retain_grad()
    (hidden * 2.0).backward(torch.tensor(g_np))
    last, tanh, first = steps
    np.testing.assert_allclose(last.grad_out, g_np)
    np.testing.assert_allclose(last.grads_in[0], hidden.grad.numpy(), rtol=1e-12)
    assert last.grads_in[1] is None  # the constant 2.0 needs no gradient
    np.testing.assert_allclose(tanh.grad_out, hidden.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(tanh.grads_in[0], prod.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(first.grads_in[0], ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(first.grads_in[1], tb.grad.numpy(), rtol=1e-12)  # summed over the broadcast
    assert [s.input_shapes for s in steps] == [((3, 4), ()), ((3, 4),), ((3, 4), (4,))]


def test_each_step_carries_its_ops_derivation():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    steps = list(teach.backward_steps(F.cross_entropy((x * x).view(1, 2), np.array([1]))))
    assert [s.op for s in steps] == ["CrossEntropy", "Reshape", "Mul"]
    assert steps[0].derivation == inspect.getdoc(F.CrossEntropy.backward)
    assert "softmax" in steps[0].derivation.lower() and steps[-1].derivation
    line = str(steps[-1])
    assert line.split()[:4] == ["Mul", "(2,),", "(2,)", "->"], line


def part5_step(seed=0):
    manual_seed(seed)
    model = build_model(vocab_size=27, block_size=8, n_embd=10, n_hidden=16)
    model.to(dtype="float64")
    rng = np.random.default_rng(seed)
    loss = F.cross_entropy(model(rng.integers(0, 27, (6, 8))), rng.integers(0, 27, 6))
    return model, loss


def test_walking_to_the_end_leaves_the_same_grads_as_backward():
    model, loss = part5_step()
    ops = [s.op for s in teach.backward_steps(loss)]
    walked = [p.grad for p in model.parameters()]
    model, loss = part5_step()
    loss.backward()
    for p, g in zip(model.parameters(), walked):
        np.testing.assert_array_equal(g, p.grad)  # the same walk: bit for bit
    assert ops[0] == "CrossEntropy" and ops.count("BatchNorm") == 3 and ops.count("MatMul") == 4
    assert ops[-1] == "Index"  # the embedding lookup was the first op recorded


def test_a_walk_keeps_retained_gradients_and_a_retained_graph():
    model, loss = part5_step()
    logits = model.layers[-1].out
    logits.retain_grad()
    steps = list(teach.backward_steps(loss, retain_graph=True))
    np.testing.assert_array_equal(logits.grad, steps[0].grads_in[0])
    first = [p.grad.numpy() for p in model.parameters()]
    loss.backward()  # the graph survived: a second backward adds the same again
    for p, g in zip(model.parameters(), first):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)


def test_a_non_scalar_needs_grad_as_backward_does():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="needs grad="):
        next(teach.backward_steps(x * 2.0))



def test_a_walk_left_unfinished_puts_every_grad_back_as_it_was():
    """A break out of the loop, then the fresh forward and backward that the freed graph
    asks for: the gradients are one backward's, not a half walk's added to them."""
    model, loss = part5_step()
    for step in teach.backward_steps(loss):
        if step.op == "BatchNorm":  # the output layer's weights hold their gradient by now
            assert model.layers[-1].weight.grad is not None
            break
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(RuntimeError, match="run the forward pass again"):
        loss.backward()
    rng = np.random.default_rng(0)  # part5_step's batch again
    F.cross_entropy(model(rng.integers(0, 27, (6, 8))), rng.integers(0, 27, 6)).backward()
    twin, twin_loss = part5_step()
    twin_loss.backward()
    assert len(model.parameters()) == len(twin.parameters())
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_an_unfinished_walk_restores_earlier_grads_and_retained_ones():
    """Gradients a leaf held before the walk (from an earlier backward) stay as they were,
    and so does a retained intermediate's; with retain_graph the graph can be walked again."""
    w, x = Tensor(np.array([0.5, -2.0]), requires_grad=True), Tensor(np.array([1.0, 3.0]), requires_grad=True)
    h = (x * 2.0).tanh()
    h.retain_grad()
    loss = (w * h).sum()
    loss.backward(retain_graph=True)
    first = {"w": w.grad.numpy(), "x": x.grad.numpy(), "h": h.grad.numpy()}
    steps = teach.backward_steps(loss, retain_graph=True)
    assert next(steps).op == "Sum" and next(steps).op == "Mul"
    np.testing.assert_array_equal(w.grad, 2 * first["w"])  # paused: w has its second gradient
    steps.close()
    for t, name in [(w, "w"), (x, "x"), (h, "h")]:
        np.testing.assert_array_equal(t.grad, first[name])
    loss.backward()  # the retained graph is whole: a second backward adds one more of each
    np.testing.assert_array_equal(x.grad, 2 * first["x"])


def test_an_error_in_a_node_leaves_no_half_walk():
    w, x = Tensor(np.array([0.5, -2.0]), requires_grad=True), Tensor(np.array([1.0, 3.0]), requires_grad=True)
    e = x.exp()
    loss = (w * 2.0 + e).sum()
    with no_grad():
        e += 1.0  # exp saved its output for backward: the walk refuses there, after w got its gradient
    reached = []
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        for step in teach.backward_steps(loss):
            reached.append(step.op)
            if step.op == "Mul":
                assert w.grad is not None
    assert reached == ["Sum", "Add", "Mul"]
    assert w.grad is None and x.grad is None


def test_a_steps_gradients_are_tensors_of_their_own():
    """As .grad, a step's gradients are Tensors outside the graph; changing one in place
    cannot change what the walk hands on."""
    w, x = Tensor(np.array([0.5, -2.0]), requires_grad=True), Tensor(np.array([1.0, 3.0]), requires_grad=True)
    out = (w * x).sum()
    for step in teach.backward_steps(out):
        assert isinstance(step.grad_out, Tensor) and step.grad_out.grad_fn is None
        for g in step.grads_in:
            g *= 100.0
    np.testing.assert_array_equal(w.grad, x.numpy())
    np.testing.assert_array_equal(x.grad, w.numpy())
