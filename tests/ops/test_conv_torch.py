"""The causal dilated convolution (tinygrad_wave/conv.py) against PyTorch, by the
formula of its docstring: out[b, t] = bias + sum_j x[b, t - d (K-1-j)] @ weight[j],
which in torch is conv1d on the left-padded, channels-first input.

`check` runs each case per device and dtype with a random upstream gradient,
so the hand-derived backward for x, weight and bias is what is tested; the
finite-difference gradcheck checks the same calculus without torch.
"""
import numpy as np
import pytest
import torch

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, manual_seed
from tinygrad_wave.gradcheck import gradcheck
from conftest import host, torch_leaf
from op_table import torch_conv1d


# (B, T, C_in, C_out): B = 1, T = 1, T shorter than the receptive field d (K-1) + 1, T longer
SHAPES = [(2, 9, 3, 4), (1, 5, 2, 3), (3, 1, 2, 2), (2, 3, 5, 1)]


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2, 4])
@pytest.mark.parametrize("B, T, C_in, C_out", SHAPES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no bias"])
def test_conv1d(check, K, dilation, B, T, C_in, C_out, with_bias):
    arrays = [check.normal(B, T, C_in), check.normal(K, C_in, C_out)] + ([check.normal(C_out)] if with_bias else [])
    check(lambda x, w, *b: F.conv1d(x, w, *b, dilation=dilation),
          lambda x, w, *b: torch_conv1d(x, w, *b, dilation=dilation), *arrays)


@pytest.mark.parametrize("requires_grad", [(True, False, False), (False, True, True), (False, False, True)],
                         ids=["x only", "weight and bias", "bias only"])
def test_conv1d_partial_grads(check, requires_grad):
    check(lambda x, w, b: F.conv1d(x, w, b, dilation=2), lambda x, w, b: torch_conv1d(x, w, b, dilation=2),
          check.normal(2, 6, 3), check.normal(2, 3, 4), check.normal(4), requires_grad=requires_grad)


def test_conv1d_is_causal_and_dilated(device):
    """With K = 3 and dilation 2, out[t] reads x at t, t - 2, t - 4: changing x at
    time 6 changes out at 6 and 8 only (never the past, never the odd gaps)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 10, 3)), rng.standard_normal((3, 3, 4))
    before = F.conv1d(Tensor(x, device=device), Tensor(w, device=device), dilation=2).numpy()
    x[:, 6] += 1.0
    after = F.conv1d(Tensor(x, device=device), Tensor(w, device=device), dilation=2).numpy()
    changed = np.flatnonzero(np.abs(before - after).max(axis=(0, 2)) > 0)
    assert changed.tolist() == [6, 8]


@pytest.mark.parametrize("K, dilation, T", [(2, 1, 5), (3, 2, 4), (2, 4, 7), (1, 1, 3)], ids=str)
def test_conv1d_gradcheck(device, rng, K, dilation, T):
    x, w, b = (Tensor(rng.standard_normal(s), requires_grad=True, device=device)
               for s in [(2, T, 3), (K, 3, 2), (2,)])
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, dilation=dilation), [x, w, b])


# --- the layer ------------------------------------------------------------------------------------

@pytest.mark.parametrize("K, dilation, bias", [(2, 4, True), (1, 1, False), (3, 2, True)], ids=str)
def test_conv1d_layer(device, rng, K, dilation, bias):
    manual_seed(0)
    layer = nn.Conv1d(5, 6, kernel_size=K, dilation=dilation, bias=bias).to(device, "float64")
    assert layer.weight.shape == (K, 5, 6) and (layer.bias is None) == (not bias)
    assert [p.shape for p in layer.parameters()] == [(K, 5, 6)] + ([(6,)] if bias else [])
    x = rng.standard_normal((3, 7, 5))
    out = layer(Tensor(x, device=device))
    assert layer.out is out
    w, b = torch_leaf(layer.weight), torch_leaf(layer.bias) if bias else None
    ref = torch_conv1d(torch.tensor(x), w, b, dilation=dilation)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(ref.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for ours, theirs in [(layer.weight, w)] + ([(layer.bias, b)] if bias else []):
        np.testing.assert_allclose(host(ours.grad), theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_conv1d_layer_init_keeps_unit_variance():
    """weight ~ randn / sqrt(K C_in): each output sums K C_in unit-variance products."""
    manual_seed(1)
    layer = nn.Conv1d(64, 64, kernel_size=2, dilation=2)
    out = layer(Tensor(np.random.default_rng(0).standard_normal((16, 40, 64)).astype(np.float32)))
    assert 0.9 < float(out.numpy()[:, 2:].std()) < 1.1
    assert np.all(layer.bias.numpy() == 0)


def test_conv1d_layer_repr():
    assert repr(nn.Conv1d(24, 64, kernel_size=2, dilation=4)) == "Conv1d(24, 64, kernel_size=2, dilation=4)"
    assert repr(nn.Conv1d(3, 5, 1, bias=False)) == "Conv1d(3, 5, kernel_size=1, bias=False)"


# --- clear errors ------------------------------------------------------------------------------------

def ones(*shape):
    return Tensor(np.ones(shape))


@pytest.mark.parametrize("x, w, b, dilation, error, match", [
    (ones(2, 5), ones(2, 5, 3), None, 1, ValueError, r"input \(B, T, C_in=5\)"),
    (ones(2, 4, 4), ones(2, 5, 3), None, 1, ValueError, r"input \(B, T, C_in=5\).*\(2, 4, 4\)"),
    (ones(2, 4, 5), ones(5, 3), None, 1, ValueError, r"weight must be \(K, C_in, C_out\)"),
    (ones(2, 4, 5), ones(0, 5, 3), None, 1, ValueError, "kernel of at least 1 step"),
    (ones(2, 4, 5), ones(2, 5, 3), ones(4), 1, ValueError, r"bias must be \(C_out,\) = \(3,\)"),
    (ones(2, 4, 5), ones(2, 5, 3), None, 0, ValueError, "dilation must be at least 1, got 0"),
    (ones(2, 4, 5), ones(2, 5, 3), None, 1.5, TypeError, "dilation must be an integer"),
], ids=["2-D input", "channels differ", "2-D weight", "K = 0", "bias size", "dilation 0", "dilation 1.5"])
def test_conv1d_errors(x, w, b, dilation, error, match):
    with pytest.raises(error, match=match):
        F.conv1d(x, w, b, dilation=dilation)


@pytest.mark.parametrize("K, dilation", [(0, 1), (2, 0)])
def test_conv1d_layer_errors(K, dilation):
    with pytest.raises(ValueError, match="kernel_size >= 1 and dilation >= 1"):
        nn.Conv1d(3, 4, K, dilation=dilation)
