"""The fused ops of tinygrad_wave.functional against PyTorch.

A fused op is one graph node whose backward is a closed form derived on paper
(cross-entropy: softmax - onehot; batch norm: makemore part 4's formula). If
the derivation is wrong the forward still looks right, so the gradients are
what these tests are about. As in test_ops_torch.py, `check` runs each test
per device and per dtype with a random upstream gradient.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave as tw
import tinygrad_wave.functional as F
from op_table import torch_batch_norm
from tinygrad_wave import Tensor


# --- cross-entropy -------------------------------------------------------------------------------

@pytest.mark.parametrize("n, classes", [(1, 3), (3, 7), (7, 1), (5, 2), (32, 27)], ids=str)
@pytest.mark.parametrize("targets_as", ["ndarray", "list", "Tensor"])
def test_cross_entropy(check, n, classes, targets_as):
    targets = check.rng.integers(0, classes, size=n)
    ours_targets = {"ndarray": targets, "list": targets.tolist(),
                    "Tensor": Tensor(targets, device=check.device)}[targets_as]
    check(lambda z: F.cross_entropy(z, ours_targets),
          lambda z: TF.cross_entropy(z, torch.tensor(targets)),
          check.normal(n, classes))


def test_cross_entropy_large_logits(check):
    """Logits in the hundreds: exp() overflows unless the row max is subtracted first."""
    targets = np.array([0, 2, 1, 2])
    logits = check.normal(4, 3) * 300
    out, _ = check(lambda z: F.cross_entropy(z, targets),
                   lambda z: TF.cross_entropy(z, torch.tensor(targets)), logits)
    assert np.isfinite(out.item())


def test_cross_entropy_repeated_targets(check):
    """Every row asks for the same class: the -1 of each row lands in one column."""
    targets = np.full(6, 4)
    check(lambda z: F.cross_entropy(z, targets),
          lambda z: TF.cross_entropy(z, torch.tensor(targets)), check.normal(6, 5))


# --- softmax ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, dim", [((3, 7), 1), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4), 1),
                                        ((2, 3, 4), -3), ((1,), 0), ((7, 1), 1)], ids=str)
def test_softmax(check, shape, dim):
    check(lambda x: F.softmax(x, dim), lambda x: torch.softmax(x, dim), check.normal(*shape))


def test_softmax_large_values(check):
    check(lambda x: F.softmax(x, -1), lambda x: torch.softmax(x, -1), check.normal(3, 5) * 300)


# --- linear ----------------------------------------------------------------------------------------

# (input shape, out_features, bias shape or None): one node, x @ weight.T + bias
LINEAR_CASES = [
    ((3, 5), 4, (4,)),
    ((2, 3, 5), 4, (4,)),      # gpt.py's (B, T, C)
    ((5,), 3, (3,)),           # one input row
    ((2, 3, 5), 1, None),      # a head's projection has no bias
    ((4, 2), 3, (1, 3)),       # a bias torch broadcasts
    ((4, 2), 3, (4, 3)),       # one bias per output element
    ((0, 2), 3, (3,)),         # no rows
]


@pytest.mark.parametrize("x_shape, out_features, bias_shape", LINEAR_CASES, ids=str)
def test_linear(check, x_shape, out_features, bias_shape):
    arrays = [check.normal(*x_shape), check.normal(out_features, x_shape[-1])]
    if bias_shape is not None:
        arrays.append(check.normal(*bias_shape))
    check(F.linear, TF.linear, *arrays)


LINEAR_REFUSALS = {
    "mixed dtypes": ((2, 3), np.float64, (4, 3), np.float32, None, "same dtype"),
    "in_features that do not fit": ((2, 3), np.float64, (4, 2), np.float64, None, "in_features = 2"),
    "a bias that does not broadcast": ((2, 3), np.float64, (4, 3), np.float64, (3,), "does not broadcast"),
}


@pytest.mark.parametrize("x_shape, x_dtype, w_shape, w_dtype, bias_shape, message", LINEAR_REFUSALS.values(),
                         ids=LINEAR_REFUSALS.keys())
def test_linear_refuses_what_torch_refuses(x_shape, x_dtype, w_shape, w_dtype, bias_shape, message):
    arrays = [np.ones(x_shape, x_dtype), np.ones(w_shape, w_dtype)] + ([np.ones(bias_shape)] if bias_shape else [])
    with pytest.raises(RuntimeError):
        TF.linear(*map(torch.tensor, arrays))
    with pytest.raises(RuntimeError, match=message):
        F.linear(*map(Tensor, arrays))


def test_linear_backward_reads_the_weight_and_input_but_not_the_bias(device):
    """dx = g @ W reads the weight, dW = g^T @ x reads x, db reads neither: a bias changed in
    place after forward is fine, a changed weight is refused, as torch refuses it."""
    def forward():
        x, w, b = (Tensor(np.random.default_rng(0).standard_normal(s), requires_grad=True, device=device)
                   for s in ((2, 3), (4, 3), (4,)))
        return x, w, b, F.linear(x, w, b)
    x, w, b, y = forward()
    with tw.no_grad():
        b += 1
    y.sum().backward()
    for changed in range(2):
        *inputs, y = forward()
        with tw.no_grad():
            inputs[changed] *= 2
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            y.sum().backward()


# --- batch norm ----------------------------------------------------------------------------------

# (x shape, dims, gamma/beta shape): one value per channel, broadcast over the reduced dims
BATCH_NORM_CASES = [
    ((7, 5), 0, (5,)),                # (B, C) over the batch
    ((7, 5), (0,), (1, 5)),           # same, gamma kept 2-D
    ((4, 3, 5), (0, 1), (5,)),        # (B, T, C) over batch and time: makemore part 5
    ((4, 3, 5), (-3, -2), (1, 1, 5)), # same dims, negative
    ((3, 4, 5), (0, 2), (4, 1)),      # (N, C, L): torch's own layout
    ((3, 7), -1, (3, 1)),             # per row (layer-norm-like)
    ((2, 1, 3), (0, 1), (3,)),        # only 2 values per channel
]


@pytest.mark.parametrize("x_shape, dims, p_shape", BATCH_NORM_CASES, ids=str)
@pytest.mark.parametrize("correction", [1, 0])
def test_batch_norm(check, x_shape, dims, p_shape, correction):
    check(lambda x, g, b: F.batch_norm(x, g, b, dims, correction=correction),
          lambda x, g, b: torch_batch_norm(x, g, b, dims, correction=correction),
          check.normal(*x_shape), check.positive(*p_shape), check.normal(*p_shape))


@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_batch_norm_eps(check, eps):
    """eps sits inside the square root, so it changes the forward and every gradient."""
    check(lambda x, g, b: F.batch_norm(x, g, b, 0, eps=eps),
          lambda x, g, b: torch_batch_norm(x, g, b, 0, eps=eps),
          check.normal(7, 3) * 0.3, check.positive(3), check.normal(3))


@pytest.mark.parametrize("requires_grad", [(True, False, False), (False, True, True)], ids=["x only", "gamma, beta only"])
def test_batch_norm_partial_grads(check, requires_grad):
    check(lambda x, g, b: F.batch_norm(x, g, b, (0, 1)),
          lambda x, g, b: torch_batch_norm(x, g, b, (0, 1)),
          check.normal(4, 3, 5), check.positive(5), check.normal(5), requires_grad=requires_grad)


@pytest.mark.parametrize("x_shape, dims, p_shape", [((7, 5), (0,), (5,)), ((5, 2, 3), (2, 0), (2, 1))], ids=str)
def test_batch_norm_with_correction_0_is_torchs_own(check, x_shape, dims, p_shape):
    """With the biased variance our batch norm is torch's F.batch_norm, which takes the
    channel as dim 1: (N, C) as it is, (N, C, L) normalised over (0, 2)."""
    check(lambda x, g, b: F.batch_norm(x, g, b, dims, correction=0),
          lambda x, g, b: TF.batch_norm(x, None, None, g.reshape(-1), b.reshape(-1), training=True),
          check.normal(*x_shape), check.positive(*p_shape), check.normal(*p_shape))


@pytest.mark.parametrize("x_shape, dims", [((7, 5), 0), ((4, 3, 5), (0, 1))], ids=str)
@pytest.mark.parametrize("momentum", [0.1, 0.5])
def test_batch_norm_running_buffers(check, x_shape, dims, momentum):
    """In training the buffers move towards the batch statistics, in place:
    running = (1 - momentum) running + momentum * stat, with the unbiased variance."""
    x = check.normal(*x_shape)
    mean0, var0 = check.normal(5), check.positive(5)
    running_mean, running_var = (Tensor(a.astype(check.dtype), device=check.device) for a in (mean0, var0))
    F.batch_norm(Tensor(x.astype(check.dtype), device=check.device),
                 Tensor(np.ones(5, check.dtype), device=check.device),
                 Tensor(np.zeros(5, check.dtype), device=check.device),
                 dims, running_mean=running_mean, running_var=running_var, momentum=momentum)

    t = torch.tensor(x.astype(check.dtype))
    t_mean, t_var = t.mean(dims), t.var(dims)  # over the same dims, unbiased
    expected_mean = (1 - momentum) * torch.tensor(mean0.astype(check.dtype)) + momentum * t_mean.reshape(-1)
    expected_var = (1 - momentum) * torch.tensor(var0.astype(check.dtype)) + momentum * t_var.reshape(-1)
    check.assert_close(running_mean, expected_mean, "running_mean")
    check.assert_close(running_var, expected_var, "running_var")


def test_batch_norm_eval_uses_running_buffers(check):
    """training=False normalises with the buffers, not the batch, and leaves them alone."""
    mean, var = check.normal(5), check.positive(5)
    ours_buffers = [Tensor(a.astype(check.dtype), device=check.device) for a in (mean, var)]
    t_mean, t_var = (torch.tensor(a.astype(check.dtype)) for a in (mean, var))
    check(lambda x, g, b: F.batch_norm(x, g, b, (0, 1), running_mean=ours_buffers[0],
                                       running_var=ours_buffers[1], training=False),
          lambda x, g, b: g * (x - t_mean) / torch.sqrt(t_var + 1e-5) + b,
          check.normal(4, 3, 5), check.positive(5), check.normal(5))
    check.assert_close(ours_buffers[0], t_mean, "running_mean after eval")
    check.assert_close(ours_buffers[1], t_var, "running_var after eval")
