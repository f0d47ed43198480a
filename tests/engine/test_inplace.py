"""In-place changes follow torch's rules instead of silently rebinding a name.

`t += x`, `-=`, `*=`, `/=` and `t[idx] = v` change t's data and keep t the
same object: always on a tensor that needs no grad or was made by an op (then
the change is recorded in the graph: tests/engine/test_inplace_torch.py checks those
gradients against torch), and inside no_grad() on a leaf that requires grad (a
parameter). Each refusal says what to write instead. `t.data = array` takes the
array's dtype, as torch's .data assignment does, but never another shape.
"""
import numpy as np
import pytest

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, manual_seed, no_grad, optim
from tinygrad_wave.data import DEFAULT_PATH, build_dataset, load_words
from tinygrad_wave.models import PRESETS, build_model

from conftest import host

IN_PLACE = {
    "+=": (lambda t, v: t.__iadd__(v), lambda a, v: a + v),
    "-=": (lambda t, v: t.__isub__(v), lambda a, v: a - v),
    "*=": (lambda t, v: t.__imul__(v), lambda a, v: a * v),
    "/=": (lambda t, v: t.__itruediv__(v), lambda a, v: a / v),
}


def test_makemore_part_5_scales_its_last_layer_in_place():
    """`with torch.no_grad(): model.layers[-1].weight *= 0.1` -- the same tensor, still trained."""
    manual_seed(42)
    model = build_model(27, **PRESETS["hier76k"])
    weight = model.layers[-1].weight
    before, version = weight.numpy(), weight._version[0]
    with no_grad():
        model.layers[-1].weight *= 0.1
    assert model.layers[-1].weight is weight and weight.requires_grad and weight.is_leaf
    assert any(p is weight for p in model.parameters())
    np.testing.assert_allclose(weight.numpy(), before * np.float32(0.1), rtol=1e-6)
    assert weight._version[0] == version + 1

    X, Y = build_dataset(load_words(DEFAULT_PATH)[:200], 8, ".abcdefghijklmnopqrstuvwxyz")
    opt = optim.SGD(model.parameters(), lr=0.1)
    scaled = weight.numpy()
    loss = F.cross_entropy(model(Tensor(X[:32])), Y[:32])
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().max() > 0
    opt.step()
    assert not np.array_equal(weight.numpy(), scaled), "SGD did not update the scaled weight"
    np.testing.assert_allclose(weight.numpy(), scaled - 0.1 * weight.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("op", IN_PLACE.keys())
@pytest.mark.parametrize("other", ["number", "tensor", "broadcast tensor", "array"])
def test_in_place_on_a_tensor_without_grad(device, rng, op, other):
    change, expected = IN_PLACE[op]
    data = rng.uniform(0.5, 2.0, (3, 4))
    value = {"number": 2.5, "tensor": Tensor(rng.uniform(0.5, 2.0, (3, 4)), device=device),
             "broadcast tensor": Tensor(rng.uniform(0.5, 2.0, 4), device=device),
             "array": rng.uniform(0.5, 2.0, (3, 4))}[other]
    t = Tensor(data, device=device)
    array = t._data
    result = change(t, value)
    assert result is t and t._data is array  # the same object and the same memory
    np.testing.assert_allclose(t.numpy(), expected(data, host(value) if other != "number" else value), rtol=1e-15)
    assert t._version[0] == 1


@pytest.mark.parametrize("op", IN_PLACE.keys())
def test_in_place_on_a_parameter_needs_no_grad(device, op):
    change, expected = IN_PLACE[op]
    w = Tensor(np.full(3, 2.0), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad") as excinfo:
        change(w, 4.0)
    assert "with no_grad():" in str(excinfo.value)  # says what to do
    np.testing.assert_array_equal(w.numpy(), [2, 2, 2])  # and changed nothing
    assert w._version[0] == 0
    with no_grad():
        assert change(w, 4.0) is w
    np.testing.assert_array_equal(w.numpy(), expected(np.full(3, 2.0), 4.0))
    assert w.requires_grad and w.is_leaf and w.grad_fn is None


@pytest.mark.parametrize("op", [*IN_PLACE.keys(), "item assignment"])
def test_in_place_on_a_non_leaf_is_recorded_with_grad_on_and_not_inside_no_grad(device, op):
    """With grad on, y takes the in-place op's node (y is now y_old op 2); inside no_grad
    only its values change and its node stays, as in torch."""
    change = IN_PLACE[op][0] if op in IN_PLACE else (lambda t, v: t.__setitem__(0, v))
    name = {"+=": "Add", "-=": "Sub", "*=": "Mul", "/=": "Div", "item assignment": "SetItem"}[op]
    x = Tensor(np.ones(3), requires_grad=True, device=device)
    y = x * 3
    change(y, 2.0)
    assert y.grad_fn.name == name and not y.is_leaf
    with no_grad():
        z = x * 3
        change(z, 2.0)
    assert z.grad_fn is None and z._version[0] == 1
    w = x * 3
    with no_grad():
        change(w, 2.0)
    assert w.grad_fn.name == "Mul" and w._version[0] == 1


@pytest.mark.parametrize("index, value", [(0, 9.0), (slice(1, None), 9.0), ([0, 2], np.array([7.0, 8.0])),
                                          ((Ellipsis,), 0.0), (np.array([True, False, True]), 5.0)], ids=str)
def test_item_assignment(device, index, value):
    expected = np.array([1.0, 2.0, 3.0])
    expected[index] = value
    t = Tensor(np.array([1.0, 2.0, 3.0]), device=device)
    t[index] = value
    np.testing.assert_array_equal(t.numpy(), expected)
    assert t._version[0] == 1
    w = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="item assignment") as excinfo:
        w[index] = value
    assert "no_grad" in str(excinfo.value)
    np.testing.assert_array_equal(w.numpy(), [1, 2, 3])
    with no_grad():
        w[index] = value
    np.testing.assert_array_equal(w.numpy(), expected)


def test_item_assignment_takes_tensors_for_index_and_value(device):
    t = Tensor(np.zeros((3, 2)), device=device)
    t[Tensor([2, 0], device=device)] = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), device=device)
    t[range(1, 2), 1] = 5.0
    np.testing.assert_array_equal(t.numpy(), [[3, 4], [0, 5], [1, 2]])


def test_in_place_on_a_0d_result(device):
    """NumPy returns a scalar for ops on 0-d arrays; a tensor's data must stay an array
    that can change in place."""
    with no_grad():
        y = Tensor(np.array(2.0), requires_grad=True, device=device) * 3
    y += 1
    assert y.item() == 7.0
    y[...] = 0.5
    assert y.item() == 0.5
    element = Tensor(np.arange(3.0), device=device)[1]
    element *= 4
    assert element.item() == 4.0 and element.shape == ()
    flag = Tensor(2.0, device=device) > 1
    assert flag.shape == () and bool(flag) and flag.float().item() == 1.0


# --- .data assignment ----------------------------------------------------------------------------------

def test_data_assignment_takes_the_new_dtype(device):
    """As torch's: float64 weights into a float32 layer stay float64 (a float64 gradcheck
    of a float32-built model must not silently lose precision)."""
    w = Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    precise = np.array([1 / 3, 2 / 3, 1.0])
    w.data = precise
    assert w.dtype == np.float64 and w.requires_grad and w._version[0] == 1
    np.testing.assert_array_equal(w.numpy(), precise)
    (w * w).sum().backward()
    assert w.grad.dtype == np.float64
    np.testing.assert_array_equal(host(w.grad), 2 * precise)


def test_data_assignment_takes_another_shape_as_in_torch_but_not_an_integer_dtype(device):
    w = Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    with pytest.raises(TypeError, match="requires grad"):
        w.data = np.arange(3)  # an integer array cannot carry a gradient
    assert w.dtype == np.float32 and w.shape == (3,) and w._version[0] == 0
    w.data = np.ones((2, 3), np.float32)  # (torch's own check: test_inplace_torch.py)
    assert w.shape == (2, 3) and w.requires_grad
    (w * w).sum().backward()
    np.testing.assert_array_equal(host(w.grad), np.full((2, 3), 2.0))


def test_data_in_place_as_sgd_does_keeps_dtype_and_bumps_the_version(device):
    w = Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    array = w._data
    w.data -= 0.5
    assert w._data is array and w.dtype == np.float32 and w._version[0] == 1
    np.testing.assert_array_equal(w.numpy(), [0.5, 0.5, 0.5])
