"""Every small op of tinygrad_wave against PyTorch: forward values and gradients.

Each test takes the `check` fixture (conftest.py), so it runs once per device
("cpu", and "cuda" where there is a GPU) and per dtype (float64 to 1e-10,
float32 to 1e-5). `check(ours, theirs, *arrays)` builds the same leaves in
both libraries, runs both forward passes, pushes one random upstream gradient
back through both, and compares the outputs and every input's gradient.

Because Tensor overloads Python's operators, most ops are written once as a
lambda and that same lambda runs on tinygrad_wave tensors and on torch tensors.
"""
import sys

import numpy as np
import pytest
import torch

import tinygrad_wave
from op_table import cases
from tinygrad_wave import Tensor


def same(fn):
    """The (ours, theirs) pair when one expression works in both libraries."""
    return fn, fn


# --- every op: the cases of tests/support/op_table.py, one each; the sections below vary them ---------

@pytest.mark.parametrize("case", cases(against_torch=True).values(), ids=cases(against_torch=True).keys())
def test_op_table_case(check, case):
    check(lambda *inputs: case.run(tinygrad_wave, *inputs), lambda *inputs: case.torch_run(*inputs),
          *case.inputs(check.rng))


# --- elementwise, two tensors, broadcasting ------------------------------------------------

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}

# Broadcasting copies an input along new leading dims and along dims of size 1,
# so its gradient must be summed back over exactly those dims. Each pair below
# broadcasts a different way: left, right, both at once, against a 0-d tensor.
BROADCAST_SHAPES = [
    ((3, 4), (3, 4)),          # no broadcasting
    ((3, 1, 5), (4, 1)),       # both inputs broadcast: result (3, 4, 5)
    ((4, 1), (3, 1, 5)),       # ... and the other way round
    ((7,), (3, 7)),            # new leading dim on the left input
    ((3, 7), (7,)),            # ... on the right input
    ((1,), (3, 1, 7)),         # size-1 vector against everything
    ((2, 3, 1), (1, 1, 7)),    # size-1 dims on both sides
    ((), (3, 7)),              # 0-d tensor on the left
    ((3, 7), ()),              # ... on the right
    ((1, 1), (1, 1)),          # all sizes 1
]


@pytest.mark.parametrize("op", BINARY_OPS.values(), ids=BINARY_OPS.keys())
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_binary_op_broadcasting(check, op, shapes):
    a_shape, b_shape = shapes
    check(*same(op), check.normal(*a_shape), check.nonzero(*b_shape))


@pytest.mark.parametrize("op", BINARY_OPS.values(), ids=BINARY_OPS.keys())
@pytest.mark.parametrize("requires_grad", [(True, False), (False, True)], ids=["a only", "b only"])
def test_binary_op_one_input_constant(check, op, requires_grad):
    """An input without requires_grad gets no gradient, and the other still gets its own."""
    check(*same(op), check.normal(3, 1, 5), check.nonzero(4, 1), requires_grad=requires_grad)


# A Python number on either side of an operator: it is lifted to a constant
# tensor of x's dtype (x * 0.1 stays float32), which needs no gradient.
SCALAR_OPS = {
    "x + 2.5": lambda x: x + 2.5,
    "2.5 + x": lambda x: 2.5 + x,
    "x - 3": lambda x: x - 3,
    "3 - x": lambda x: 3 - x,
    "x * 0.1": lambda x: x * 0.1,
    "0.1 * x": lambda x: 0.1 * x,
    "x / 4": lambda x: x / 4,
    "4 / x": lambda x: 4 / x,
}


@pytest.mark.parametrize("op", SCALAR_OPS.values(), ids=SCALAR_OPS.keys())
@pytest.mark.parametrize("shape", [(), (1,), (3, 7)], ids=str)
def test_python_scalar_on_either_side(check, op, shape):
    check(*same(op), check.nonzero(*shape))


# --- elementwise, one tensor -----------------------------------------------------------------

UNARY_OPS = {
    "neg": (lambda x: -x, "normal"),
    "tanh": (lambda x: x.tanh(), "normal"),
    "exp": (lambda x: x.exp(), "normal"),
    "log": (lambda x: x.log(), "positive"),
}


@pytest.mark.parametrize("op, domain", UNARY_OPS.values(), ids=UNARY_OPS.keys())
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 1, 7)], ids=str)
def test_unary_op(check, op, domain, shape):
    x = getattr(check, domain)(*shape)
    check(*same(op), x)


# d(x^p)/dx = p x^(p-1): integer powers on any x, fractional ones on x > 0
# (whole exponents from -2 to 3 are computed as products, as torch does: 3.0 as a float, 4 and -3.0 past them)
POWERS = [(2, "normal"), (3, "normal"), (1, "normal"), (0, "nonzero"), (-1, "nonzero"),
          (-2, "nonzero"), (0.5, "positive"), (-1.5, "positive"), (2.5, "positive"), (3.0, "normal"),
          (4, "normal"), (-3.0, "nonzero"), (5, "normal")]


@pytest.mark.parametrize("exponent, domain", POWERS, ids=[str(p) for p, _ in POWERS])
def test_pow(check, exponent, domain):
    check(*same(lambda x: x ** exponent), getattr(check, domain)(3, 7))


# --- reductions --------------------------------------------------------------------------------

# tuple dims, negative dims, all dims (None), keepdim both ways
REDUCE_DIMS = [None, 0, 1, -1, (0, 2), (-1, -3), (2, 0), (1,), (0, 1, 2)]


@pytest.mark.parametrize("op", ["sum", "mean", "var", "std"])
@pytest.mark.parametrize("dim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True], ids=["", "keepdim"])
def test_reduction(check, op, dim, keepdim):
    reduce = lambda x: getattr(x, op)(dim=dim, keepdim=keepdim)
    check(*same(reduce), check.normal(3, 2, 7))


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("dim", [None, 0, (0, 2), -2], ids=str)
def test_reduction_over_size_one_dims(check, op, dim):
    """Summing over a dim of size 1 moves nothing; the gradient must still keep its shape."""
    check(*same(lambda x: getattr(x, op)(dim=dim)), check.normal(1, 3, 1))


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, (0, 2), -1], ids=str)
def test_var_and_std_correction(check, op, correction, dim):
    """var divides by n - correction: 0 is the biased (population) variance, 1 Bessel's; std is its root."""
    check(*same(lambda x: getattr(x, op)(dim=dim, correction=correction)), check.normal(3, 2, 7))


# --- shape ops -------------------------------------------------------------------------------
# No values change; the gradient is just routed back to where each value came from.

SHAPE_OPS = {
    "view(-1)": lambda x: x.view(-1),
    "view(7, 3)": lambda x: x.view(7, 3),
    "view((3, -1))": lambda x: x.view((3, -1)),
    "reshape(1, 21)": lambda x: x.reshape(1, 21),
    "squeeze(1)": lambda x: x.squeeze(1),
    "squeeze(-2)": lambda x: x.squeeze(-2),
    "squeeze(0) (size 3: no-op)": lambda x: x.squeeze(0),
    "unsqueeze(0)": lambda x: x.unsqueeze(0),
    "unsqueeze(-1)": lambda x: x.unsqueeze(-1),
    "unsqueeze(2)": lambda x: x.unsqueeze(2),
    "transpose(0, 2)": lambda x: x.transpose(0, 2),
    "transpose(-1, 0)": lambda x: x.transpose(-1, 0),
    "transpose(1, 1)": lambda x: x.transpose(1, 1),
    # a transposed array is not contiguous: reshape must copy, and backward undo both
    "transpose then reshape": lambda x: x.transpose(0, 2).reshape(7, 3),
    # makemore.py's: expand copies a size-1 dim (the gradient sums the copies), roll wraps
    "expand(2, 3, 4, -1)": lambda x: x.expand(2, 3, 4, -1),
    "expand((3, 5, 7))": lambda x: x.expand((3, 5, 7)),
    "roll(2, -1)": lambda x: x.roll(2, -1),
    "roll((1, -3), (0, 2))": lambda x: x.roll((1, -3), (0, 2)),
    "roll(4) (flat)": lambda x: x.roll(4),
    "split(3, -1)[1]": lambda x: x.split(3, -1)[1],
    "split([2, 5], 2)[1]": lambda x: x.split([2, 5], 2)[1],
    "topk(3)": lambda x: x.topk(3).values,
    "topk(2, 0, largest=False)": lambda x: x.topk(2, 0, largest=False).values,
    "transpose, contiguous, view": lambda x: x.transpose(0, 2).contiguous().view(21),
}


@pytest.mark.parametrize("op", SHAPE_OPS.values(), ids=SHAPE_OPS.keys())
def test_shape_op(check, op):
    check(*same(op), check.normal(3, 1, 7))


# --- indexing ----------------------------------------------------------------------------------
# out = W[index] is a gather; its backward is a scatter-ADD: a row read twice
# (the same character twice in a context) must receive both gradients.

BATCH_IX = np.random.default_rng(0).integers(0, 7, size=(32, 8))  # a makemore-like (B, T) batch

# each case builds an index from `arr`, which turns a nested list into the
# library's integer index (an array, or an integer Tensor)
INDEX_CASES = {
    "int": lambda arr: 2,
    "negative int": lambda arr: -1,
    "slice": lambda arr: slice(1, 3),
    "negative slice": lambda arr: slice(-2, None),
    "column": lambda arr: (slice(None), 1),
    "ellipsis": lambda arr: (Ellipsis, 1),
    "strided": lambda arr: (slice(None), slice(None, None, 2)),
    "rows": lambda arr: arr([4, 0, 6]),
    "rows repeated": lambda arr: arr([0, 3, 3, 6, 0]),
    "(B,T) repeated": lambda arr: arr([[0, 1, 1, 5], [6, 1, 0, 0], [2, 2, 2, 2]]),
    "(B,T) batch": lambda arr: arr(BATCH_IX.tolist()),
    "size 1": lambda arr: arr([5]),
    "negative indices": lambda arr: arr([-1, 0, -1, -7]),  # NumPy/torch: -1 is the last row
    "rows, column slice": lambda arr: (arr([0, 2, 2]), slice(1, 3)),
    "(row, col) pairs": lambda arr: (arr([0, 6, 0]), arr([2, 1, 2])),
    "boolean mask": lambda arr: arr([True, False, False, True, True, False, True]),
}


@pytest.mark.parametrize("index", INDEX_CASES.values(), ids=INDEX_CASES.keys())
@pytest.mark.parametrize("kind", ["array", "Tensor"])
def test_indexing(check, index, kind):
    device = check.device
    if kind == "Tensor":  # an integer Tensor on W's device
        ours_arr = lambda v: Tensor(np.array(v), device=device)
    else:  # a raw integer array of W's device (numpy on the CPU, cupy on the GPU)
        ours_arr = lambda v: Tensor(np.array(v), device=device).data
    check(lambda W: W[index(ours_arr)], lambda W: W[index(torch.tensor)], check.normal(7, 3))


# --- matmul ---------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 5), (5, 7)),              # plain 2-D
    ((1, 5), (5, 1)),              # sizes 1
    ((2, 3, 5), (5, 7)),           # 3-D @ 2-D: makemore's (B, T, C) @ W
    ((3, 4), (2, 4, 5)),           # 2-D @ 3-D: the left input is broadcast over the batch
    ((2, 3, 4), (2, 4, 5)),        # batched
    ((2, 1, 3, 4), (1, 5, 4, 6)),  # 4-D with batch dims broadcast both ways
    ((5,), (5, 7)),                # vector @ matrix (a 1-row matrix, row dropped)
    ((3, 5), (5,)),                # matrix @ vector (a 1-column matrix, column dropped)
    ((2, 3, 5), (5,)),             # batch @ vector
    ((5,), (2, 5, 7)),             # vector @ batch
    ((5,), (5,)),                  # vector @ vector: a 0-d dot product
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(check, shapes):
    a_shape, b_shape = shapes
    check(*same(lambda a, b: a @ b), check.normal(*a_shape), check.normal(*b_shape))


@pytest.mark.parametrize("shapes", [((3, 5), (5, 7)), ((2, 3, 5), (5, 7)), ((2, 1, 3, 4), (1, 5, 4, 6))], ids=str)
@pytest.mark.parametrize("requires_grad", [(True, False), (False, True)], ids=["a only", "b only"])
def test_matmul_one_input_constant(check, shapes, requires_grad):
    a_shape, b_shape = shapes
    check(*same(lambda a, b: a @ b), check.normal(*a_shape), check.normal(*b_shape),
          requires_grad=requires_grad)


# --- graphs: a tensor used more than once ---------------------------------------------------------
# When x feeds several ops, dL/dx is the SUM of the gradients along every path.

GRAPHS = {
    "x * x": lambda x: x * x,
    "x in three branches": lambda x: x.tanh() * x.exp() + x,
    "intermediate used twice": lambda x: (lambda h: h * h + h.tanh())(x * 3.0 - 1.0),
    "diamond": lambda x: (lambda a: (a * 2) * (a + 3))(x + 1),
    "x - x": lambda x: x - x,  # gradients that cancel exactly: zeros, not missing
}


@pytest.mark.parametrize("graph", GRAPHS.values(), ids=GRAPHS.keys())
def test_reused_node_gets_sum_of_gradients(check, graph):
    check(*same(graph), check.normal(3, 7))


def test_two_inputs_shared_by_many_ops(check):
    """A small expression tree mixing every kind of op, each input used several times."""
    expr = lambda x, w, b: ((x @ w + b).tanh() * (x @ w)).sum(dim=-1).mean() + (w * w).sum() / b.exp().sum()
    check(*same(expr), check.normal(2, 3, 5), check.normal(5, 4), check.normal(4))


# --- a deep graph --------------------------------------------------------------------------------

def test_deep_chain_has_no_recursion_limit(device, rng):
    """5000 chained adds: a recursive backward would pass Python's recursion limit."""
    depth = 5000
    assert depth > sys.getrecursionlimit()
    x = Tensor(rng.standard_normal(3), requires_grad=True, device=device)
    y = x
    for _ in range(depth):
        y = y + x  # y = (depth + 1) x, with x consumed by every one of the adds
    g = rng.standard_normal(3)
    y.backward(g)
    np.testing.assert_allclose(y.numpy(), (depth + 1) * x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(Tensor(x.grad, device=device).numpy(), (depth + 1) * g, rtol=1e-12)
