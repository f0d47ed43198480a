"""tinygrad_wave's own finite-difference checker, on every op, and on itself.

gradcheck(fn, inputs) builds the Jacobian d out / d x twice -- from backward,
and from central differences (f(x + eps) - f(x - eps)) / 2 eps -- and raises
GradcheckError when they disagree. It needs no torch, so these tests check
the calculus itself rather than agreement with another library.

The second half checks the checker: a Function with a deliberately wrong
backward must be caught, float32 inputs must be refused, and a couple of
hypothesis tests throw random shapes at broadcasting and reductions.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_wave
import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from op_table import cases
from tinygrad_wave import Tensor
from tinygrad_wave.autograd import Function
from tinygrad_wave.gradcheck import GradcheckError, gradcheck


def leaves(device, *arrays):
    """float64 leaves on `device` that require grad: what gradcheck differentiates."""
    return [Tensor(np.asarray(a, dtype=np.float64), requires_grad=True, device=device) for a in arrays]


def ids(values, device):
    """Integer ids as a Tensor on `device` (indices and class targets need no grad)."""
    return Tensor(np.array(values), device=device)


# --- every op: the cases of tests/support/op_table.py -----------------------------------------------

@pytest.mark.parametrize("case", cases(finite_differences=True).values(), ids=cases(finite_differences=True).keys())
def test_op(device, rng, case):
    assert gradcheck(lambda *inputs: case.run(tinygrad_wave, *inputs), leaves(device, *case.inputs(rng)))


def test_layers_together(device, rng):
    """A tiny hierarchical model, end to end: embedding -> flatten -> linear -> batch norm -> tanh
    -> linear -> cross-entropy, checked with respect to every parameter."""
    layers = [nn.Embedding(5, 2), nn.FlattenConsecutive(2), nn.Linear(4, 3, bias=False),
              nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 5)]
    model = nn.Sequential(layers).to(device=device, dtype=np.float64)
    params = model.parameters()
    for p in params:
        p.data = rng.standard_normal(p.shape)
    X, Y = ids([[0, 3], [4, 4], [1, 0], [3, 2]], device), ids([1, 4, 0, 0], device)

    def loss(*_):  # gradcheck perturbs the parameters in place; the model reads them
        return F.cross_entropy(model(X), Y)

    assert gradcheck(loss, params)


# --- the checker checks ------------------------------------------------------------------------------

class SquareForgetsTheTwo(Function):
    """x^2 with the classic slip in its backward: d(x^2)/dx written as x, not 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (g * self.x,)


class MulSwapsGradients(Function):
    """a * b whose backward hands each input its own value instead of the other's.
    Only caught when a != b: one more reason to test on random inputs."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.a, g * self.b


class SquareNaNBackward(Function):
    """x^2 whose backward returns NaN: a broken derivative must never pass as a correct one."""

    def forward(self, x):
        return x * x

    def backward(self, g):
        return (g * np.nan,)


class Square(Function):
    """The correct version, as a control."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        return (2 * g * self.x,)


def test_passes_a_correct_backward(device, rng):
    assert gradcheck(lambda x: Square.apply(x), leaves(device, rng.standard_normal((2, 3))))


@pytest.mark.parametrize("function, n_inputs", [(SquareForgetsTheTwo, 1), (MulSwapsGradients, 2),
                                                (SquareNaNBackward, 1)], ids=["forgets the 2", "swaps", "NaN"])
def test_raises_on_a_wrong_backward(device, rng, function, n_inputs):
    inputs = leaves(device, *(rng.uniform(0.5, 2.0, (2, 3)) for _ in range(n_inputs)))
    with pytest.raises(GradcheckError, match="gradient mismatch for input 0"):
        gradcheck(lambda *xs: function.apply(*xs), inputs)


def test_wrong_backward_in_one_input_only_names_that_input(device, rng):
    """a + b*b with b's derivative wrong: input 0 passes, the error names input 1."""
    a, b = leaves(device, rng.standard_normal(3), rng.uniform(0.5, 2.0, 3))
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: a + SquareForgetsTheTwo.apply(b), [a, b])


def test_rejects_float32(device):
    x = Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda x: x * x, [x])


def test_needs_an_input_that_requires_grad(device):
    x = Tensor(np.ones(3), device=device)
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda x: x * x, [x])


def test_leaves_the_inputs_as_they_were(device, rng):
    """Perturbing the inputs in place must put every value back, and the backward
    passes it runs must leave no .grad behind on any input."""
    x, w = leaves(device, rng.standard_normal((2, 3)), rng.standard_normal(3))
    before = x.numpy(), w.numpy()
    gradcheck(lambda x, w: (x * w).sum(0), [x, w])
    np.testing.assert_array_equal(x.numpy(), before[0])
    np.testing.assert_array_equal(w.numpy(), before[1])
    assert x.grad is None, "input 0 keeps a Jacobian row from gradcheck's backward passes"
    assert w.grad is None


def test_keeps_gradients_the_inputs_already_had(device, rng):
    """Checking a model's parameters half-way through training must not wipe the
    gradients they hold (torch's gradcheck leaves .grad alone too)."""
    x, w = leaves(device, rng.standard_normal(3), rng.standard_normal(3))
    (x * w).sum().backward()
    grads = Tensor(x.grad, device=device).numpy(), Tensor(w.grad, device=device).numpy()
    gradcheck(lambda x, w: x * w, [x, w])
    assert x.grad is not None and w.grad is not None, "gradcheck set the inputs' .grad to None"
    np.testing.assert_array_equal(Tensor(x.grad, device=device).numpy(), grads[0])
    np.testing.assert_array_equal(Tensor(w.grad, device=device).numpy(), grads[1])


# --- property-based: random shapes -----------------------------------------------------------------------

FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(["add", "sub", "mul", "div"]))
def test_property_broadcasting(device, shapes, op):
    """Any two broadcastable shapes: the gradient comes back summed to each input's own shape."""
    rng = np.random.default_rng(0)
    a, b = leaves(device, *(rng.uniform(0.5, 2.0, s) for s in shapes.input_shapes))
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    assert fn(a, b).shape == shapes.result_shape
    assert gradcheck(fn, [a, b])


@FAST
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), data=st.data(),
       op=st.sampled_from(["sum", "mean", "var"]), keepdim=st.booleans())
def test_property_reductions(device, shape, data, op, keepdim):
    """Any subset of dims, each written positive or negative, against NumPy's forward and gradcheck."""
    ndim = len(shape)
    axes = data.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    dims = tuple(d - ndim if data.draw(st.booleans()) else d for d in axes)
    count = int(np.prod([shape[d] for d in axes]))
    assume(op != "var" or count > 1)  # the unbiased variance of one value is 0 / 0

    x, = leaves(device, np.random.default_rng(0).standard_normal(shape))
    out = getattr(x, op)(dim=dims, keepdim=keepdim)
    expected = {"sum": np.sum, "mean": np.mean, "var": lambda a, **kw: np.var(a, ddof=1, **kw)}[op](
        x.numpy(), axis=tuple(axes), keepdims=keepdim)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x: getattr(x, op)(dim=dims, keepdim=keepdim), [x])
