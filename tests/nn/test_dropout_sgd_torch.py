"""Dropout and SGD with momentum and weight decay, the two training aids the
WaveNet needs, against torch's definitions.

Dropout's mask is random, so torch cannot draw the same one: the tests read
our mask off the output and check the rest -- the scaling, the statistics of
the draw, eval mode, and that backward goes through that very mask -- against
torch computing x * mask / (1 - p) with it.
"""
import numpy as np
import pytest
import torch

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, manual_seed
from tinygrad_wave.gradcheck import gradcheck
from tinygrad_wave.optim import SGD
from conftest import host


# --- dropout ------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_gradient_goes_through_the_same_mask(check, p):
    kept = {}

    def ours(x):
        out = F.dropout(x, p)
        kept["mask"] = host(out) != 0  # x has no zeros: a zero in out is a dropped element
        return out

    check(ours, lambda x: x * torch.tensor(kept["mask"]) / (1 - p), check.nonzero(4, 5, 6))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_mask_statistics_and_scaling(device, p):
    """About a fraction p is zeroed (within 5 standard deviations of the binomial
    count); every kept element is x / (1 - p) exactly."""
    n = 200_000
    out = host(F.dropout(Tensor(np.ones(n), device=device), p))
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(np.unique(out), [0.0, 1 / (1 - p)])


def test_dropout_in_eval_mode_is_the_identity(device):
    x = Tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True, device=device)
    assert F.dropout(x, 0.5, training=False) is x
    layer = nn.Dropout(0.3).eval()
    assert layer(x) is x and layer.out is x
    assert layer.train()(x) is not x


def test_dropout_masks_come_from_the_global_generator(device):
    def mask(seed):
        manual_seed(seed)
        return host(F.dropout(Tensor(np.ones((8, 50)), device=device), 0.5)) == 0

    np.testing.assert_array_equal(mask(7), mask(7))
    assert (mask(7) != mask(8)).any()


def test_dropout_p_0_and_1(device):
    x = Tensor(np.full((3, 4), 2.0), requires_grad=True, device=device)
    assert F.dropout(x, 0.0) is x
    out = F.dropout(x, 1.0)  # torch: all zeros, and a zero gradient
    out.backward(np.ones((3, 4)))
    assert not host(out).any() and not host(x.grad).any()


def test_dropout_gradcheck(device):
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True, device=device)

    def fn(x):
        manual_seed(11)  # the same mask at every call of the finite differences
        return F.dropout(x, 0.4)

    assert gradcheck(fn, [x])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(Tensor(np.ones(3)), p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)


def test_dropout_repr():
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)" and repr(nn.Dropout()) == "Dropout(p=0.5)"


# --- SGD ------------------------------------------------------------------------------------------

def loss_of(W, b, x, y):
    """A small loss with curvature, written once for both libraries."""
    return (((x @ W + b).tanh() - y) ** 2).sum()


@pytest.mark.parametrize("momentum", [0, 0.9])
@pytest.mark.parametrize("weight_decay", [0, 0.05])
def test_sgd_follows_torch_step_by_step(device, momentum, weight_decay):
    """Six steps on the same loss: after every step our parameters equal torch.optim.SGD's.
    A third parameter gets no gradient and must not move (torch skips it too)."""
    rng = np.random.default_rng(3)
    W0, b0, unused0 = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(2)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    ours = [Tensor(a, requires_grad=True, device=device) for a in (W0, b0, unused0)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (W0, b0, unused0)]
    opt = SGD(ours, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    ref = torch.optim.SGD(theirs, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    xs, ys = Tensor(x, device=device), Tensor(y, device=device)
    for step in range(6):
        opt.zero_grad()
        loss_of(ours[0], ours[1], xs, ys).backward()
        opt.step()
        ref.zero_grad()
        loss_of(theirs[0], theirs[1], torch.tensor(x), torch.tensor(y)).backward()
        ref.step()
        for a, t in zip(ours, theirs):
            np.testing.assert_allclose(host(a), t.detach().numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"step {step}")
    np.testing.assert_array_equal(host(ours[2]), unused0)


def test_sgd_state_dict_resumes_exactly(device):
    """Three steps, save, a fresh optimiser loads the velocities, three more steps:
    the same parameters, bit for bit, as six unbroken steps."""
    rng = np.random.default_rng(4)
    W0, b0 = rng.standard_normal((4, 3)), rng.standard_normal(3)
    x, y = Tensor(rng.standard_normal((5, 4)), device=device), Tensor(rng.standard_normal((5, 3)), device=device)

    def train(params, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_of(*params, x, y).backward()
            opt.step()

    whole = [Tensor(a, requires_grad=True, device=device) for a in (W0, b0)]
    train(whole, SGD(whole, lr=0.05, momentum=0.9, weight_decay=0.01), 6)
    broken = [Tensor(a, requires_grad=True, device=device) for a in (W0, b0)]
    first = SGD(broken, lr=0.05, momentum=0.9, weight_decay=0.01)
    train(broken, first, 3)
    state = first.state_dict()
    assert sorted(state) == ["velocity.0", "velocity.1"] and isinstance(state["velocity.0"], np.ndarray)
    second = SGD(broken, lr=0.05, momentum=0.9, weight_decay=0.01)
    second.load_state_dict(state)
    train(broken, second, 3)
    for a, b in zip(whole, broken):
        np.testing.assert_array_equal(host(a), host(b))


def test_sgd_load_state_dict_rejects_a_misfit():
    params = [Tensor(np.ones((2, 3)), requires_grad=True)]
    with pytest.raises(ValueError, match=r"velocity.0 has shape \(3,\)"):
        SGD(params, lr=0.1, momentum=0.9).load_state_dict({"velocity.0": np.ones(3)})
    with pytest.raises(KeyError, match="velocity.5"):
        SGD(params, lr=0.1, momentum=0.9).load_state_dict({"velocity.5": np.ones((2, 3))})


@pytest.mark.parametrize("kwargs, name", [(dict(lr=-0.1), "lr"), (dict(lr=float("nan")), "lr"),
                                          (dict(lr=float("inf")), "lr"), (dict(lr="0.1"), "lr"),
                                          (dict(lr=0.1, momentum=-0.5), "momentum"),
                                          (dict(lr=0.1, weight_decay=-1e-4), "weight_decay")], ids=str)
def test_sgd_rejects_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=f"SGD {name} must be a finite number >= 0"):
        SGD([Tensor(np.ones(2), requires_grad=True)], **kwargs)
