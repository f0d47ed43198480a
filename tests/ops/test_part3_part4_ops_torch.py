"""What makemore parts 3 and 4 use beyond the earlier lectures' ops, with torch's names, against
PyTorch: max/min and argmax/argmin, keepdims, sqrt/abs/log10/sigmoid/relu/clone, casts in the
graph, comparisons, mixed indexing, the creation helpers and one_hot.

Same recipe as test_ops_torch.py: `check(ours, theirs, *arrays)` runs both
forwards on the same leaves, pushes one random upstream gradient back through
both, and compares the outputs and every input's gradient, once per dtype.
Random normal data has no ties, so max/min have one winner per reduction.
"""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave as tw
import tinygrad_wave.functional as F
from tinygrad_wave import Tensor

from conftest import host


def same(fn):
    return fn, fn


# --- max / min / argmax / argmin ----------------------------------------------------------------------

@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 1, 5)], ids=str)
def test_max_min_over_everything_is_0d(check, op, shape):
    out, _ = check(*same(lambda x: getattr(x, op)()), check.normal(*shape))
    assert out.shape == ()


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("shape, dim", [((3, 2, 5), 0), ((3, 2, 5), 1), ((3, 2, 5), -1), ((3, 2, 5), -3),
                                        ((4,), 0), ((1, 5), 0), ((), 0), ((), -1)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
def test_max_min_along_a_dim(check, op, shape, dim, keepdim):
    """(values, indices): values in the graph, the gradient going to the element at indices."""
    out, ref = check(*same(lambda x: getattr(x, op)(dim, keepdim=keepdim).values), check.normal(*shape))
    x = Tensor(np.asarray(check.normal(*shape)), device=check.device)
    result, torch_result = getattr(x, op)(dim, keepdim), getattr(torch.tensor(x.numpy()), op)(dim, keepdim)
    values, indices = result  # unpacks, as torch's named tuple does
    assert indices is result.indices and values is result.values
    assert indices.dtype == np.int64 and not indices.requires_grad and indices.grad_fn is None
    np.testing.assert_array_equal(indices.numpy(), torch_result.indices.numpy())
    assert indices.shape == tuple(torch_result.indices.shape)


def test_max_over_everything_shares_the_gradient_among_ties(check):
    """Over all elements, torch splits g equally between the elements that tie for the top."""
    x = np.array([[1.0, 3.0, -2.0], [3.0, 0.5, 3.0]])
    check(*same(lambda x: x.max()), x)
    check(*same(lambda x: x.min()), -x)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
def test_argmax_argmin(device, rng, op, dim, keepdim):
    data = rng.standard_normal((4, 6))
    ours = getattr(Tensor(data, requires_grad=True, device=device), op)(dim=dim, keepdim=keepdim)
    theirs = getattr(torch.tensor(data), op)(dim=dim, keepdim=keepdim)
    assert ours.dtype == np.int64 and ours.grad_fn is None and not ours.requires_grad
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_argmax_of_0d(device):
    for keepdim in (False, True):
        assert Tensor(2.0, device=device).argmax(0, keepdim=keepdim).shape == ()


def test_max_of_an_empty_tensor_raises(device):
    with pytest.raises(RuntimeError, match="empty"):
        Tensor(np.zeros((0, 3)), device=device).max()


# --- keepdims spelled as numpy and torch both accept (std's dims and corrections: test_ops_torch.py) ----

@pytest.mark.parametrize("op", ["sum", "mean", "var", "std", "max", "min"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_keepdims_is_a_spelling_of_keepdim(check, op, keepdims):
    """makemore part 4 writes `counts.sum(1, keepdims=True)`."""
    def reduce(x):
        out = getattr(x, op)(1, keepdims=keepdims)
        return out.values if op in ("max", "min") else out

    out, _ = check(*same(reduce), check.normal(3, 4, 2))
    assert out.shape == ((3, 1, 2) if keepdims else (3, 2))


# --- elementwise -----------------------------------------------------------------------------------------

UNARY = {
    "sqrt": (lambda x: x.sqrt(), "positive"),
    "abs": (lambda x: x.abs(), "nonzero"),
    "log10": (lambda x: x.log10(), "positive"),
    "sigmoid": (lambda x: x.sigmoid(), "normal"),
    "relu": (lambda x: x.relu(), "nonzero"),
    "clone": (lambda x: x.clone(), "normal"),
    "clone then used twice": (lambda x: (lambda c: c * c + c)(x.clone()), "normal"),
}


@pytest.mark.parametrize("op, domain", UNARY.values(), ids=UNARY.keys())
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 1, 5)], ids=str)
def test_part3_part4_unary_op(check, op, domain, shape):
    check(*same(op), getattr(check, domain)(*shape))


def test_clone_is_new_memory(device):
    x = Tensor(np.ones(3), requires_grad=True, device=device)
    c = x.clone()
    assert c.grad_fn is not None and c.data is not x.data
    c.data[0] = 5.0  # (raw array access) never reaches x
    assert x.numpy()[0] == 1.0


def test_sigmoid_of_large_values_neither_overflows_nor_nans(check):
    x = np.array([-1000.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp() would be a RuntimeWarning
        out, _ = check(*same(lambda x: x.sigmoid()), x)
    assert np.isfinite(out.numpy()).all()


def test_abs_and_relu_at_zero_have_torchs_gradient(check):
    """At the kink torch picks 0 for both."""
    check(*same(lambda x: x.abs() + 3 * x.relu()), np.array([0.0, -0.0, 1.5, -2.0]))


# --- casts in the graph ------------------------------------------------------------------------------------

def test_float_and_double_stay_in_the_graph(device, rng):
    """float64 -> float32 -> ops -> float64: each input's gradient arrives in its own dtype."""
    data, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    fn = lambda x: (x.float().tanh() * 2).double() * x + x.double()
    x, xt = Tensor(data, requires_grad=True, device=device), torch.tensor(data, requires_grad=True)
    out, ref = fn(x), fn(xt)
    assert out.dtype == np.float64 and out.grad_fn is not None
    out.backward(g)
    ref.backward(torch.tensor(g))
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(host(x.grad), xt.grad.numpy(), rtol=1e-6, atol=1e-6)  # a float32 stretch: float32's precision
    y = Tensor(data.astype(np.float32), requires_grad=True, device=device)
    assert y.float() is y  # nothing to convert: the tensor itself, as torch
    assert y.double().dtype == np.float64 and y.double().grad_fn is not None


# --- comparisons ---------------------------------------------------------------------------------------------

COMPARISONS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@pytest.mark.parametrize("compare", COMPARISONS.values(), ids=COMPARISONS.keys())
@pytest.mark.parametrize("other", ["tensor", "broadcast tensor", "number", "number on the left"])
def test_comparison_is_a_bool_tensor_outside_the_graph(device, rng, compare, other):
    a = np.round(rng.standard_normal((3, 4)), 1)
    b = {"tensor": np.round(rng.standard_normal((3, 4)), 1), "broadcast tensor": a[0]}.get(other, 0.1)
    x = Tensor(a, requires_grad=True, device=device)
    if other == "number on the left":
        ours, theirs = compare(0.1, x), compare(0.1, torch.tensor(a))
    else:
        y = Tensor(b, requires_grad=True, device=device) if other.endswith("tensor") else b
        ours, theirs = compare(x, y), compare(torch.tensor(a), torch.tensor(b) if other.endswith("tensor") else b)
    assert ours.dtype == np.bool_ and ours.grad_fn is None and not ours.requires_grad
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_saturation_measure_of_makemore_part_3(check):
    """`(h.abs() > 0.97).float().mean()`: the share of tanh outputs in the flat tails."""
    h = np.tanh(3 * check.normal(32, 100))
    ours, theirs = check.leaves(h)
    out, ref = (ours.abs() > 0.97).float().mean(), (theirs.abs() > 0.97).float().mean()
    assert out.dtype == np.float32 and out.grad_fn is None
    assert 0 < out.item() < 1
    assert out.item() == pytest.approx(ref.item(), abs=1e-7)


def test_tensors_key_a_dict_by_identity(device):
    """== compares elements, yet a tensor still works as a dict key or set member, as in torch."""
    a, b = Tensor([1.0, 2.0], device=device), Tensor([1.0, 2.0], device=device)
    table = {a: "a", b: "b"}
    assert table[a] == "a" and table[b] == "b" and len({a, b, a}) == 2
    assert hash(a) != hash(b)


# --- mixed indexing ----------------------------------------------------------------------------------------

MIXED_INDEX = {
    # makemore part 4's `logprobs[range(n), Yb]`, Yb in each form a notebook may hold it
    "range, ids": lambda arr: (range(6), arr([3, 0, 3, 4, 3, 1])),
    "range, list": lambda arr: (range(6), [3, 0, 3, 4, 3, 1]),
    "list, slice": lambda arr: ([0, 5, 5, 2], slice(1, 4)),
    "slice, ids": lambda arr: (slice(None), arr([4, 4, 0])),
    "int, list": lambda arr: (2, [0, 0, 4, -1]),
    "ids, int": lambda arr: (arr([1, 1, -6]), 3),
    "ids broadcast against a column of ids": lambda arr: (arr([[0], [2], [2]]), arr([[1, 4]])),
    "negative slice, range": lambda arr: (slice(-3, None), range(1, 5, 2)),
    "mask from a comparison": None,  # built below from the data
}


@pytest.mark.parametrize("name", MIXED_INDEX.keys())
@pytest.mark.parametrize("kind", ["array", "Tensor"])
def test_mixed_tuple_index_scatters_the_gradient_back(check, name, kind):
    """Repeated rows and columns must get every gradient that reached them (scatter-add)."""
    x = check.normal(6, 5)
    if name == "mask from a comparison":
        check(lambda x: x[x > 0.3], lambda x: x[x > 0.3], x)
        return
    device = check.device
    ours_arr = (lambda v: Tensor(np.array(v), device=device)) if kind == "Tensor" else (
        lambda v: Tensor(np.array(v), device=device).data)
    index = MIXED_INDEX[name]
    check(lambda x: x[index(ours_arr)], lambda x: x[index(torch.tensor)], x)


def test_index_with_three_dims_and_a_slice_between(check):
    """Advanced indices split by a slice: the broadcast index dims come first, in NumPy and torch alike."""
    check(*same(lambda x: x[range(2), :, [1, 1]]), check.normal(2, 3, 4))
    check(lambda x: x[Tensor(1, device=check.device)], lambda x: x[torch.tensor(1)], check.normal(3, 4))


# --- creation helpers and one_hot ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["zeros_like", "ones_like"])
def test_zeros_like_ones_like(device, name):
    x = Tensor(np.ones((2, 3), np.float64), requires_grad=True, device=device)
    ours, theirs = getattr(tw, name)(x), getattr(torch, name)(torch.ones(2, 3, dtype=torch.float64))
    assert ours.shape == (2, 3) and ours.dtype == np.float64 and ours.device == device
    assert not ours.requires_grad and ours.grad_fn is None
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert getattr(tw, name)(x, dtype="float32").dtype == np.float32
    assert getattr(tw, name)(x, requires_grad=True).requires_grad


def test_tanh_function(check):
    check(lambda x: tw.tanh(x), lambda x: torch.tanh(x), check.normal(3, 4))


@pytest.mark.parametrize("ids", [[3, 0, 3, 1], [[0, 2], [1, 1]], [0], []], ids=str)
@pytest.mark.parametrize("num_classes", [-1, 5])
@pytest.mark.parametrize("as_tensor", [False, True], ids=["array", "Tensor"])
def test_one_hot(device, ids, num_classes, as_tensor):
    if not ids and num_classes == -1:
        pytest.skip("torch cannot infer the class count of an empty tensor")
    array = np.array(ids, dtype=np.int64)
    ours = F.one_hot(Tensor(array, device=device) if as_tensor else array, num_classes)
    theirs = TF.one_hot(torch.tensor(array), num_classes)
    assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape) and ours.grad_fn is None
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.float().dtype == np.float32  # makemore: F.one_hot(ix, num_classes=27).float()


def test_one_hot_bad_input():
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.one_hot(np.array([-1, 0]), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(np.array([0.0, 1.0]), 3)


def test_randn_with_a_private_generator_is_reproducible():
    """A numpy.random.Generator still works as randn's generator= (its own numbers, not torch's)."""
    tw.manual_seed(0)
    global_before = tw.randn(3).numpy()
    tw.manual_seed(0)
    a = tw.randn(27, 10, generator=np.random.default_rng(2147483647))
    b = tw.randn(27, 10, generator=np.random.default_rng(2147483647))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    expected = np.random.default_rng(2147483647).standard_normal((27, 10)).astype(np.float32)
    np.testing.assert_array_equal(a.numpy(), expected)
    assert a.dtype == np.float32 and a.shape == (27, 10)
    np.testing.assert_array_equal(tw.randn(3).numpy(), global_before)  # the global generator was not used
    g = np.random.default_rng(1)
    first, second = tw.randn(4, generator=g), tw.randn(4, generator=g)
    assert not np.array_equal(first.numpy(), second.numpy())  # the generator moves on, as torch's
    assert tw.randn((2, 3), generator=g, dtype="float64", requires_grad=True).requires_grad
