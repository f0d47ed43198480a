"""The layers of tinygrad_wave.nn against PyTorch: outputs, input gradients,
parameter gradients, and the batch-norm running buffers.

Each layer is moved to the test's device and dtype and its parameters are
redrawn at random: with the initial gamma = 1, beta = 0 or bias = 0, a
gradient that mixes up gamma and beta, or forgets the bias, could still pass.
Each parameter is then copied into the torch reference, both layers see the
same input and the same random upstream gradient, and every gradient must match.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave.makemore_layers as nn
import tinygrad_wave.optim as optim
from tinygrad_wave import Tensor
from conftest import TorchBatchNorm1d, torch_leaf


# --- helpers -----------------------------------------------------------------------------------------

def on_device(check, layer):
    """`layer` on the test's device and dtype, with every parameter redrawn from the test's generator."""
    layer.to(device=check.device, dtype=check.dtype)
    for p in layer.parameters():
        p.data = check.normal(*p.shape).astype(check.dtype)  # .data takes the array's dtype, as in torch
    return layer


def compare_layer(check, layer, reference, x, param_pairs):
    """Run `layer` and `reference` (torch) on the input array x and compare the outputs,
    the gradient of x (when x is a float input) and, for each (ours, theirs, name) in
    param_pairs, the parameter gradients. `theirs` is the torch leaf, or a function
    returning its gradient in our layout (torch.nn.Linear stores its weight transposed)."""
    ours_x, torch_x = check.leaves(x)
    out, ref = layer(ours_x), reference(torch_x)
    check.assert_close(out, ref, "forward output")
    check.backward_both(out, ref)
    if torch_x.requires_grad:
        check.assert_close(ours_x.grad, torch_x.grad, "gradient of the input")
    for ours, theirs, name in param_pairs:
        theirs = theirs() if callable(theirs) else theirs.grad
        check.assert_close(ours.grad, theirs, f"gradient of {name}")


# --- Linear -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, fan_out", [((3, 5), 7), ((2, 4, 5), 7), ((7, 1), 3), ((1, 5), 1)], ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
def test_linear(check, x_shape, fan_out, bias):
    """Against torch.nn.Linear, whose weight is stored transposed: (fan_out, fan_in)."""
    layer = on_device(check, nn.Linear(x_shape[-1], fan_out, bias=bias))
    ref = torch.nn.Linear(x_shape[-1], fan_out, bias=bias)
    ref.weight = torch.nn.Parameter(torch.tensor(layer.weight.numpy().T.copy()))
    pairs = [(layer.weight, lambda: ref.weight.grad.T, "weight")]
    if bias:
        ref.bias = torch.nn.Parameter(torch_leaf(layer.bias))
        pairs.append((layer.bias, ref.bias, "bias"))
    compare_layer(check, layer, ref, check.normal(*x_shape), pairs)


def test_linear_parameters():
    layer = nn.Linear(5, 7)
    assert [p.shape for p in layer.parameters()] == [(5, 7), (7,)]
    assert [p.shape for p in nn.Linear(5, 7, bias=False).parameters()] == [(5, 7)]


# --- BatchNorm1d ----------------------------------------------------------------------------------------

def new_batch_norm(check, dim, **options):
    """A BatchNorm1d with random parameters and random running buffers."""
    layer = on_device(check, nn.BatchNorm1d(dim, **options))
    layer.running_mean.data = check.normal(dim).astype(check.dtype)
    layer.running_var.data = check.positive(dim).astype(check.dtype)
    return layer


BATCH_NORM_SHAPES = [(7, 5), (2, 5), (4, 3, 5), (1, 3, 5), (2, 1, 5)]  # (B, C) and (B, T, C)


@pytest.mark.parametrize("x_shape", BATCH_NORM_SHAPES, ids=str)
@pytest.mark.parametrize("options", [{}, dict(eps=1e-3, momentum=0.3)], ids=["default", "eps, momentum"])
def test_batch_norm_training(check, x_shape, options):
    layer = new_batch_norm(check, x_shape[-1], **options)
    ref = TorchBatchNorm1d(layer)
    compare_layer(check, layer, ref, check.normal(*x_shape),
                  [(layer.gamma, ref.gamma, "gamma"), (layer.beta, ref.beta, "beta")])
    check.assert_close(layer.running_mean, ref.running_mean, "running_mean")
    check.assert_close(layer.running_var, ref.running_var, "running_var")


@pytest.mark.parametrize("x_shape", [(7, 5), (1, 5), (4, 3, 5)], ids=str)
def test_batch_norm_eval(check, x_shape):
    """In eval mode the buffers normalise, and they do not move. One value per
    channel is fine here (1, 5): no statistics are computed from the batch."""
    layer = new_batch_norm(check, x_shape[-1]).eval()
    ref = TorchBatchNorm1d(layer)
    buffers = layer.running_mean.numpy(), layer.running_var.numpy()
    compare_layer(check, layer, ref, check.normal(*x_shape),
                  [(layer.gamma, ref.gamma, "gamma"), (layer.beta, ref.beta, "beta")])
    np.testing.assert_array_equal(layer.running_mean.numpy(), buffers[0])
    np.testing.assert_array_equal(layer.running_var.numpy(), buffers[1])


@pytest.mark.parametrize("x_shape", [(7, 5), (4, 3, 5)], ids=str)
def test_batch_norm_buffers_and_eval_match_torch_module(check, x_shape):
    """torch.nn.BatchNorm1d differs in the normalisation only: its running_var update
    uses the unbiased variance too, and in eval mode the formulas are identical.
    It takes channels in dim 1, so a (B, T, C) input is given to it as (B, C, T)."""
    layer = new_batch_norm(check, x_shape[-1])
    ref = torch.nn.BatchNorm1d(x_shape[-1], momentum=layer.momentum, eps=layer.eps, dtype=check.torch_dtype)
    ref.weight = torch.nn.Parameter(torch_leaf(layer.gamma))
    ref.bias = torch.nn.Parameter(torch_leaf(layer.beta))
    ref.running_mean.copy_(torch_leaf(layer.running_mean))
    ref.running_var.copy_(torch_leaf(layer.running_var))
    channels_in_dim_1 = (lambda t: t) if len(x_shape) == 2 else (lambda t: t.transpose(1, 2))

    x = check.normal(*x_shape).astype(check.dtype)
    layer(Tensor(x, device=check.device))  # training: update the buffers
    ref(channels_in_dim_1(torch.tensor(x)))
    check.assert_close(layer.running_mean, ref.running_mean, "running_mean")
    check.assert_close(layer.running_var, ref.running_var, "running_var")

    layer.eval(), ref.eval()
    compare_layer(check, layer, lambda t: channels_in_dim_1(ref(channels_in_dim_1(t))),
                  check.normal(*x_shape), [(layer.gamma, ref.weight, "gamma"), (layer.beta, ref.bias, "beta")])


def test_batch_norm_parameters_and_buffers():
    layer = nn.BatchNorm1d(5)
    assert layer.parameters() == [layer.gamma, layer.beta]
    assert layer.buffers() == [layer.running_mean, layer.running_var]
    assert not layer.running_mean.requires_grad and not layer.running_var.requires_grad


# --- Tanh, Embedding, FlattenConsecutive -----------------------------------------------------------------

@pytest.mark.parametrize("x_shape", [(1,), (3, 7), (2, 3, 4)], ids=str)
def test_tanh(check, x_shape):
    compare_layer(check, nn.Tanh(), torch.tanh, check.normal(*x_shape), [])


@pytest.mark.parametrize("num, dim", [(27, 10), (7, 1), (1, 3)], ids=str)
@pytest.mark.parametrize("index_as", ["ndarray", "Tensor", "list"])
@pytest.mark.parametrize("ix_shape", [(32, 8), (5,), (3, 1)], ids=str)
def test_embedding(check, num, dim, index_as, ix_shape):
    """A (B, T) batch of ids with repeats: each row's gradient is the sum over every
    place it was looked up (index ids < num, so repeats are certain for small tables)."""
    layer = on_device(check, nn.Embedding(num, dim))
    W = torch_leaf(layer.weight)
    ix = check.rng.integers(0, num, size=ix_shape)
    # the input arrives as an integer Tensor on the device; the other kinds pass the raw ids
    as_index = {"Tensor": lambda t: t, "ndarray": lambda t: ix, "list": lambda t: ix.tolist()}[index_as]
    compare_layer(check, lambda t: layer(as_index(t)), lambda t: TF.embedding(t, W),
                  ix, [(layer.weight, W, "weight")])


def test_embedding_single_id(check):
    layer = on_device(check, nn.Embedding(7, 3))
    W = torch_leaf(layer.weight)
    compare_layer(check, lambda _: layer(4), lambda t: TF.embedding(t, W), np.array(4),
                  [(layer.weight, W, "weight")])


def torch_flatten_consecutive(x, n):
    """makemore part 5's FlattenConsecutive: (B, T, C) -> (B, T // n, C * n), squeezed when T // n == 1."""
    B, T, C = x.shape
    x = x.reshape(B, T // n, C * n)
    return x.squeeze(1) if x.shape[1] == 1 else x


@pytest.mark.parametrize("x_shape, n", [((4, 8, 3), 1), ((4, 8, 3), 2), ((4, 8, 3), 4), ((4, 8, 3), 8),
                                        ((1, 2, 1), 2), ((3, 6, 2), 3)], ids=str)
def test_flatten_consecutive(check, x_shape, n):
    compare_layer(check, nn.FlattenConsecutive(n), lambda x: torch_flatten_consecutive(x, n),
                  check.normal(*x_shape), [])


# --- Sequential and the Module plumbing ---------------------------------------------------------------

def torch_linear(ours):
    """torch.nn.Linear holding a copy of a tinygrad_wave Linear's parameters."""
    fan_in, fan_out = ours.weight.shape
    ref = torch.nn.Linear(fan_in, fan_out, bias=ours.bias is not None)
    ref.weight = torch.nn.Parameter(torch.tensor(ours.weight.numpy().T.copy()))
    if ours.bias is not None:
        ref.bias = torch.nn.Parameter(torch_leaf(ours.bias))
    return ref


def test_sequential(check):
    model = on_device(check, nn.Sequential([nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3, bias=False)]))
    first, _, last = model.layers
    ref = torch.nn.Sequential(torch_linear(first), torch.nn.Tanh(), torch_linear(last))
    assert model.parameters() == [first.weight, first.bias, last.weight]
    compare_layer(check, model, ref, check.normal(2, 4, 5),
                  [(first.weight, lambda: ref[0].weight.grad.T, "layers.0.weight"),
                   (first.bias, ref[0].bias, "layers.0.bias"),
                   (last.weight, lambda: ref[2].weight.grad.T, "layers.2.weight")])


def test_sgd_step_matches_torch(check):
    """p <- p - lr * grad, for every parameter, the same as torch.optim.SGD."""
    layer = on_device(check, nn.Linear(5, 3))
    ref = torch_linear(layer)
    compare_layer(check, layer, ref, check.normal(4, 5), [])
    optim.SGD(layer.parameters(), lr=0.1).step()
    torch.optim.SGD(ref.parameters(), lr=0.1).step()
    check.assert_close(layer.weight, ref.weight.T, "weight after a step")
    check.assert_close(layer.bias, ref.bias, "bias after a step")


def test_train_eval_and_zero_grad_reach_every_layer(device):
    model = nn.Sequential([nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh()]).to(device=device)
    assert all(layer.training for layer in model.layers)
    model.eval()
    assert not any(layer.training for layer in model.layers)
    model.train()
    out = model(Tensor(np.ones((3, 5), np.float32), device=device)).sum()
    out.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_moves_in_place(device):
    """Module.to changes each tensor in place: an optimiser made before still holds the parameters."""
    model = nn.Sequential([nn.Linear(3, 2), nn.BatchNorm1d(2)])
    params = model.parameters()
    model.to(device=device, dtype=np.float64)
    assert len(params) == len(model.parameters()) and all(a is b for a, b in zip(params, model.parameters()))
    assert all(t.dtype == np.float64 and t.device == device for t in params + model.buffers())


def test_state_dict_round_trip(device):
    model = nn.Sequential([nn.Embedding(7, 3), nn.FlattenConsecutive(2), nn.Linear(6, 4), nn.BatchNorm1d(4)])
    assert list(model.state_dict()) == ["layers.0.weight", "layers.2.weight", "layers.2.bias",
                                        "layers.3.gamma", "layers.3.beta",
                                        "layers.3.running_mean", "layers.3.running_var"]
    model.to(device=device)
    model(np.array([[1, 2], [3, 3], [0, 6]]))  # a training step moves the running buffers
    state = model.state_dict()
    assert all(isinstance(a, np.ndarray) for a in state.values())  # host arrays, whatever the device

    fresh = nn.Sequential([nn.Embedding(7, 3), nn.FlattenConsecutive(2), nn.Linear(6, 4), nn.BatchNorm1d(4)])
    fresh.to(device=device).load_state_dict(state)
    for name, array in fresh.state_dict().items():
        np.testing.assert_array_equal(array, state[name], err_msg=name)
