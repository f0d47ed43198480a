"""The one table of tinygrad_wave's ops, read by every test that runs "each op".

A Case names the `Function` it exercises, the code that runs it, the shapes of its inputs and
the domain they are drawn from. The code is written once for both libraries: run(lib, *inputs)
with `lib` either tinygrad_wave or torch. Where our spelling is not torch's (makemore's
batch_norm, the causal conv1d), `twin` is the same computation in torch's terms.

    tests/ops/test_ops_torch.py     every case against torch: forward, and the gradient of one
                                    random upstream gradient, in float64 and float32
    tests/ops/test_gradcheck.py     every case against finite differences, in float64
    tests/ops/test_retain_graph.py  every case: two backward calls give twice the gradient
    tests/ops/test_op_table.py      every Function of tinygrad_wave is here, or in TESTED_ELSEWHERE

Shapes are small and awkward (sizes 1, 2, 3 and 5, broadcasting both ways, 0-d). "positive"
draws from [0.5, 2], where log, fractional powers and division are safe; a case that needs both
signs shifts its input (tanh, abs and relu by about -1.2, so that their kinks or bends lie
between the values); "normal" is the standard normal, which softmax and the norms need.
"""
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as TF

DOMAINS = {
    "positive": lambda rng, shape: rng.uniform(0.5, 2.0, shape),
    "normal": lambda rng, shape: rng.standard_normal(shape),
}


class Case(NamedTuple):
    function: str                      # the name of the Function subclass this case must create
    run: Callable                      # run(lib, *inputs), lib is tinygrad_wave or torch
    shapes: list                       # the shape of each input
    domain: str = "positive"           # a key of DOMAINS
    twin: Optional[Callable] = None    # twin(*inputs) in torch, where torch's spelling is not `run`'s
    against_torch: bool = True         # False: torch cannot compute the same (its comment says where it is checked)
    finite_differences: bool = True    # False: it rounds to float32 inside, finer than gradcheck's steps can see

    def inputs(self, rng):
        """Float64 arrays for this case's inputs, drawn from its domain."""
        return [DOMAINS[self.domain](rng, shape) for shape in self.shapes]

    def torch_run(self, *inputs):
        """The case computed by torch, on torch leaves."""
        return self.twin(*inputs) if self.twin else self.run(torch, *inputs)


def ids(lib, values, like):
    """Integer indices (or a boolean mask) on the device of the tensor `like`."""
    return lib.tensor(np.asarray(values), device=like.device)


def F(lib):
    """lib's nn.functional, the module the lectures import as F."""
    return lib.nn.functional


# --- our spelling differs from torch's: the twins, in torch --------------------------------------------

def torch_conv1d(x, weight, bias=None, dilation=1):
    """conv1d's docstring formula in torch: (B, T, C_in) -> (B, C_in, T), pad d (K-1) zeros on
    the left, torch's conv1d with weight (C_out, C_in, K), back to (B, T, C_out)."""
    K = weight.shape[0]
    padded = TF.pad(x.transpose(1, 2), (dilation * (K - 1), 0))
    return TF.conv1d(padded, weight.permute(2, 1, 0), bias, dilation=dilation).transpose(1, 2)


def torch_batch_norm(x, gamma, beta, dims, eps=1e-5, correction=1, running=None):
    """makemore's batch norm written out: statistics over `dims`, variance divided by n - correction
    (torch.nn.BatchNorm1d would normalise with the biased variance, makemore does not), or the
    `running` (mean, var) in their place."""
    if running is None:
        mean, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, correction=correction)
    else:
        mean, var = running
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


RUNNING_MEAN, RUNNING_VAR = [0.3, -1.0], [0.5, 2.0]


def running_stats(lib, like):
    """Running buffers for eval mode, in the dtype and on the device of `like`."""
    return [lib.tensor(np.array(values), device=like.device).to(dtype=like.dtype)
            for values in (RUNNING_MEAN, RUNNING_VAR)]


def batch_norm_eval(lib, x, gamma, beta):
    mean, var = running_stats(lib, x)
    return F(lib).batch_norm(x, gamma, beta, 0, running_mean=mean, running_var=var, training=False)


def seeded_dropout(lib, x):
    """Dropout with the same mask at every call (gradcheck calls it many times)."""
    lib.manual_seed(11)
    return F(lib).dropout(x, 0.5)


# --- the table ---------------------------------------------------------------------------------------

# each run is written with `t` for the library: t.cat, t.where, F(t).softmax
CASES = {
    # elementwise, broadcasting both ways
    "add broadcast both ways": Case("Add", lambda t, a, b: a + b, [(3, 1, 2), (5, 1)]),
    "sub 0-d on the left": Case("Sub", lambda t, a, b: a - b, [(), (2, 3)]),
    "mul broadcast": Case("Mul", lambda t, a, b: a * b, [(2, 3), (3,)]),
    "div broadcast": Case("Div", lambda t, a, b: a / b, [(2, 1), (1, 3)]),
    "scalars either side": Case("Div", lambda t, x: 2.0 - 3.0 / x + x * 0.5, [(2, 3)]),
    "neg": Case("Neg", lambda t, x: -x, [(3,)]),
    "pow 3 of both signs": Case("Pow", lambda t, x: (x - 1.2) ** 3, [(2, 3)]),
    "pow -1.5": Case("Pow", lambda t, x: x ** -1.5, [(2, 3)]),
    "pow 0.5": Case("Pow", lambda t, x: x ** 0.5, [(5,)]),
    "a number to a tensor's power": Case("RPow", lambda t, x: 2.0 ** x, [(2, 3)]),
    "exp": Case("Exp", lambda t, x: x.exp(), [(2, 3)]),
    "log": Case("Log", lambda t, x: x.log(), [(2, 3)]),
    "log10": Case("Log10", lambda t, x: x.log10(), [(2, 3)]),
    "sqrt": Case("Sqrt", lambda t, x: x.sqrt(), [(2, 3)]),
    "abs": Case("Abs", lambda t, x: (x - 1.25).abs(), [(2, 3)]),
    "tanh": Case("Tanh", lambda t, x: (x - 1.2).tanh(), [(2, 3)]),
    "sigmoid": Case("Sigmoid", lambda t, x: (x - 1.2).sigmoid(), [(2, 3)]),
    "relu": Case("ReLU", lambda t, x: (x - 1.25).relu(), [(2, 3)]),
    "clone": Case("Clone", lambda t, x: x.clone() * x, [(2, 3)]),
    "to float32 and back": Case("To", lambda t, x: x.float().double(), [(2, 3)], finite_differences=False),
    "reused node": Case("Mul", lambda t, x: (lambda h: h * h - h.tanh())(x * x), [(2, 3)]),
    # reductions
    "sum all": Case("Sum", lambda t, x: x.sum(), [(2, 3, 2)]),
    "sum tuple dims keepdim": Case("Sum", lambda t, x: x.sum((0, 2), keepdim=True), [(2, 3, 2)]),
    "mean negative dim": Case("Mean", lambda t, x: x.mean(-1), [(2, 3, 2)]),
    "mean (0, -1)": Case("Mean", lambda t, x: x.mean((0, -1)), [(2, 3, 2)]),
    "var unbiased": Case("Var", lambda t, x: x.var(1), [(2, 3, 2)]),
    "var tuple dims, correction 0": Case("Var", lambda t, x: x.var((0, 2), keepdim=True, correction=0),
                                         [(2, 3, 2)]),
    "std tuple dims": Case("Std", lambda t, x: x.std((0, 2)), [(2, 3, 2)]),
    "std correction 0 keepdim": Case("Std", lambda t, x: x.std(1, keepdim=True, correction=0), [(2, 3)]),
    "max all": Case("Max", lambda t, x: x.max() * 2, [(2, 3)]),
    "max dim keepdim": Case("Max", lambda t, x: x.max(1, keepdim=True).values * 2, [(2, 3, 2)]),
    "min dim -1": Case("Max", lambda t, x: x.min(-1).values * 2, [(2, 3)]),
    "min 0-d": Case("Max", lambda t, x: x.min(0).values * 2, [()]),
    "topk along dim 0": Case("TakeAlongDim", lambda t, x: x.topk(2, 0).values * 2, [(3, 5)]),
    # shapes and indexing
    "view": Case("Reshape", lambda t, x: x.view(3, -1) * x.view(3, 4), [(2, 3, 2)]),
    "squeeze, unsqueeze": Case("Reshape", lambda t, x: x.squeeze(1).unsqueeze(0) * 2, [(3, 1, 2)]),
    "transpose": Case("Transpose", lambda t, x: x.transpose(0, -1) * 2, [(2, 3, 1)]),
    "contiguous of a transpose": Case("Transpose", lambda t, x: x.transpose(0, 1).contiguous() * 2, [(2, 3)]),
    "expand size-1 and new dims": Case("Expand", lambda t, x: x.expand(2, 3, 5) * 2, [(3, 1)]),
    "roll two dims": Case("Roll", lambda t, x: x.roll((1, -2), (0, 1)) * 2, [(2, 3)]),
    "roll flat": Case("Roll", lambda t, x: x.roll(2) * 2, [(2, 3, 1)]),
    "cat along dim 1": Case("Cat", lambda t, a, b: t.cat([a, b * 2], 1), [(2, 3), (2, 1)]),
    "slice": Case("Index", lambda t, x: x[1:, ::2] * 2, [(3, 5)]),
    "index repeated (B, T)": Case("Index", lambda t, W: W[ids(t, [[0, 2, 2], [1, 0, 0]], W)], [(3, 2)]),
    "mixed index (range, ids)": Case("Index", lambda t, x: x[range(4), ids(t, [2, 0, 2, 1], x)], [(4, 3)]),
    "mixed index (list, slice) repeated": Case("Index", lambda t, x: x[[0, 2, 2], 1:], [(3, 3)]),
    "split, every piece used": Case("Index", lambda t, x: (lambda a, b, c: a * b + c)(*x.split(2, 1)), [(3, 5)]),
    # matmul
    "matmul 2-D": Case("MatMul", lambda t, a, b: a @ b, [(3, 2), (2, 5)]),
    "matmul 3-D @ 2-D": Case("MatMul", lambda t, a, b: a @ b, [(2, 3, 2), (2, 5)]),
    "matmul batched": Case("MatMul", lambda t, a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    "matmul 4-D broadcast batch": Case("MatMul", lambda t, a, b: a @ b, [(2, 1, 1, 3), (1, 3, 3, 2)]),
    "matmul vector @ matrix": Case("MatMul", lambda t, a, b: a @ b, [(3,), (3, 2)]),
    "matmul matrix @ vector": Case("MatMul", lambda t, a, b: a @ b, [(2, 3), (3,)]),
    # the GPT lecture's selections: masks fixed in forward, so the gradient is g or 0 by element
    "masked_fill -inf then exp": Case("MaskedFill", lambda t, x: x.masked_fill(
        ids(t, np.triu(np.ones((3, 3), bool), 1), x), float("-inf")).exp(), [(2, 3, 3)]),
    "where broadcast": Case("Where", lambda t, a, b: t.where(ids(t, [True, False, True], a), a, b), [(2, 3), (2, 1)]),
    "tril diagonal 0": Case("Triangle", lambda t, x: x.tril() * 2, [(3, 4)]),
    "triu diagonal 1": Case("Triangle", lambda t, x: x.triu(1) * 2, [(2, 3, 3)]),
    # the fused ops (tinygrad_wave.functional, conv.py): one node each, a closed-form backward
    "cross_entropy": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(z, ids(t, [2, 0, 2, 1], z)), [(4, 3)],
                          "normal"),
    "cross_entropy one row": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(z, ids(t, [4], z)), [(1, 5)],
                                  "normal"),
    "cross_entropy sum, a row ignored": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(
        z, ids(t, [2, -100, 2, 1], z), reduction="sum"), [(4, 3)], "normal"),
    "cross_entropy none, label smoothing": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(
        z, ids(t, [2, 0, -1, 1], z), ignore_index=-1, reduction="none", label_smoothing=0.3), [(4, 3)], "normal"),
    "cross_entropy (N, C, d1, d2)": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(
        z, ids(t, [[[0, 3], [2, 2], [1, 0]], [[3, 3], [0, 1], [2, 0]]], z), label_smoothing=0.1), [(2, 4, 3, 2)],
        "normal"),
    "cross_entropy one example (C,)": Case("CrossEntropy", lambda t, z: F(t).cross_entropy(z, ids(t, 2, z)), [(5,)],
                                           "normal"),
    "softmax dim 1": Case("Softmax", lambda t, x: F(t).softmax(x, 1), [(2, 3, 2)], "normal"),
    "softmax dim -1": Case("Softmax", lambda t, x: F(t).softmax(x, -1), [(3, 4)], "normal"),
    "log_softmax dim 0": Case("LogSoftmax", lambda t, x: F(t).log_softmax(x, 0), [(3, 2, 2)], "normal"),
    "layer_norm weight and bias": Case("LayerNorm", lambda t, x, w, b: F(t).layer_norm(x, (3,), w, b),
                                       [(2, 2, 3), (3,), (3,)], "normal"),
    "layer_norm over 2 dims, no affine": Case("LayerNorm", lambda t, x: F(t).layer_norm(x, (2, 3)), [(2, 2, 3)],
                                              "normal"),
    "clamp both bounds": Case("Clamp", lambda t, x: x.clamp(0.8, 1.6), [(2, 3)]),
    "clamp min only": Case("Clamp", lambda t, x: t.clamp(x, min=1.1), [(5,)]),
    "linear (B, T, C)": Case("Linear", lambda t, x, w, b: F(t).linear(x, w, b), [(2, 3, 4), (5, 4), (5,)],
                             "normal"),
    "linear one row, no bias": Case("Linear", lambda t, x, w: F(t).linear(x, w), [(3,), (2, 3)], "normal"),
    "gelu exact": Case("GELU", lambda t, x: F(t).gelu(x), [(2, 3)], "normal"),
    "gelu tanh": Case("GELU", lambda t, x: F(t).gelu(x, approximate="tanh"), [(2, 3)], "normal"),
    "batch_norm (B, C)": Case("BatchNorm", lambda t, x, g, b: F(t).batch_norm(x, g, b, 0),
                              [(5, 3), (3,), (3,)], "normal", twin=lambda x, g, b: torch_batch_norm(x, g, b, 0)),
    "batch_norm (B, T, C) over (0, 1)": Case(
        "BatchNorm", lambda t, x, g, b: F(t).batch_norm(x, g, b, (0, 1)), [(2, 3, 2), (2,), (2,)], "normal",
        twin=lambda x, g, b: torch_batch_norm(x, g, b, (0, 1))),
    "batch_norm (N, C, L), correction 0": Case(
        "BatchNorm", lambda t, x, g, b: F(t).batch_norm(x, g, b, (0, 2), correction=0),
        [(3, 2, 2), (2, 1), (2, 1)], "normal", twin=lambda x, g, b: torch_batch_norm(x, g, b, (0, 2), correction=0)),
    "batch_norm eval, composed of plain ops": Case(
        "Mul", batch_norm_eval, [(3, 2), (2,), (2,)], "normal",
        twin=lambda x, g, b: torch_batch_norm(x, g, b, 0, running=running_stats(torch, x))),
    "conv1d dilated": Case("Conv1d", lambda t, x, w, b: F(t).conv1d(x, w, b, dilation=2),
                           [(2, 5, 3), (2, 3, 4), (4,)], "normal",
                           twin=lambda x, w, b: torch_conv1d(x, w, b, dilation=2)),
    # torch cannot draw our mask: tests/nn/test_dropout_sgd_torch.py checks it against torch with our mask
    "dropout, seeded": Case("Dropout", seeded_dropout, [(4, 5)], "normal", against_torch=False),
}

# Functions that a single expression cannot exercise: in-place writes into a tensor of the graph,
# and the jit's nodes, which only a captured function's replay makes
TESTED_ELSEWHERE = {
    "SetItem": "tests/engine/test_inplace_torch.py (t[idx] = v on a tensor made by an op)",
    "ViewWrite": "tests/engine/test_inplace_torch.py (a write through a view of a tensor in the graph)",
    "ReplayedForward": "tests/jit/test_jit_guards.py (a captured forward replays its backward)",
    "ReplayedOutput": "tests/jit/test_jit.py (a second backward through a replayed step's loss is refused)",
}


def cases(**wanted):
    """The cases whose fields have the `wanted` values, e.g. cases(against_torch=True)."""
    return {name: case for name, case in CASES.items()
            if all(getattr(case, field) == value for field, value in wanted.items())}
