"""The whole model against PyTorch: makemore part 5's 76,579-parameter
hierarchical (WaveNet-like) network, built by tinygrad_wave.models.build_model
and, below, in a few lines of plain torch with the same weights copied in.

Everything is float64, so the two must agree to ~1e-10 at every step:
  * one batch: the same loss, the same gradient for every parameter, the same
    running buffers;
  * 50 SGD steps (lr 0.1) on the same batches: the same loss at every step,
    and the same parameters and buffers at the end;
  * after training, in eval mode: the same logits.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
import tinygrad_wave.optim as optim
from tinygrad_wave import Tensor, manual_seed
from tinygrad_wave.models import PRESETS, build_model
from conftest import TorchBatchNorm1d, torch_leaf

VOCAB = 27  # 26 letters and '.'
TOL = dict(rtol=1e-10, atol=1e-10)
BATCH, STEPS, LR = 32, 50, 0.1


# --- makemore part 5's layers in plain torch, each built from its tinygrad_wave twin -------------------

class Embedding:
    def __init__(self, ours):
        self.weight = torch_leaf(ours.weight)

    def __call__(self, ix):
        return self.weight[ix]


class FlattenConsecutive:
    def __init__(self, ours):
        self.n = ours.n

    def __call__(self, x):
        B, T, C = x.shape
        x = x.view(B, T // self.n, C * self.n)
        return x.squeeze(1) if x.shape[1] == 1 else x


class Linear:
    def __init__(self, ours):
        self.weight = torch_leaf(ours.weight)
        self.bias = None if ours.bias is None else torch_leaf(ours.bias)

    def __call__(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias


class Tanh:
    def __init__(self, ours):
        pass

    def __call__(self, x):
        return torch.tanh(x)


TWINS = {nn.Embedding: Embedding, nn.FlattenConsecutive: FlattenConsecutive, nn.Linear: Linear,
         nn.BatchNorm1d: TorchBatchNorm1d, nn.Tanh: Tanh}


class TorchModel:
    """The torch twin of a tinygrad_wave Sequential: same layers, same weights, same order."""

    def __init__(self, ours):
        self.layers = [TWINS[type(layer)](layer) for layer in ours.layers]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def named_tensors(self):
        """(name, tensor) keyed like tinygrad_wave's state_dict, e.g. 'layers.3.running_mean'."""
        for i, layer in enumerate(self.layers):
            for name, value in vars(layer).items():
                if isinstance(value, torch.Tensor):
                    yield f"layers.{i}.{name}", value

    def parameters(self):
        return [t for _, t in self.named_tensors() if t.requires_grad]

    def eval(self):
        for layer in self.layers:
            layer.training = False


# --- building the pair and the data ----------------------------------------------------------------------

def make_pair(device):
    manual_seed(42)
    ours = build_model(VOCAB, **PRESETS["hier76k"]).to(device=device, dtype=np.float64)
    return ours, TorchModel(ours)


def make_batches(n):
    """n batches of (contexts, next characters); random ids stand in for the names data."""
    rng = np.random.default_rng(2024)
    return [(rng.integers(0, VOCAB, size=(BATCH, PRESETS["hier76k"]["block_size"])),
             rng.integers(0, VOCAB, size=BATCH)) for _ in range(n)]


def forward_both(ours, theirs, device, X, Y):
    """The loss of both models on one batch."""
    ours_loss = F.cross_entropy(ours(Tensor(X, device=device)), Tensor(Y, device=device))
    torch_loss = TF.cross_entropy(theirs(torch.tensor(X)), torch.tensor(Y))
    return ours_loss, torch_loss


def assert_same_state(ours, theirs, what, grads=False):
    """Every parameter and buffer (or every parameter's gradient) of the two models, by name."""
    ours_tensors = {name: t for name, t, _ in ours.named_tensors()}
    torch_tensors = dict(theirs.named_tensors())
    assert ours_tensors.keys() == torch_tensors.keys()
    for name, t in torch_tensors.items():
        if grads and not t.requires_grad:
            continue
        mine = ours_tensors[name]
        actual = Tensor(mine.grad, device=mine.device).numpy() if grads else mine.numpy()
        expected = (t.grad if grads else t).detach().numpy()
        np.testing.assert_allclose(actual, expected, err_msg=f"{what}: {name}", **TOL)


# --- the tests -------------------------------------------------------------------------------------------

def test_parameter_count(device):
    ours, theirs = make_pair(device)
    assert sum(p.numel() for p in ours.parameters()) == 76_579
    assert sum(p.numel() for p in theirs.parameters()) == 76_579


def test_one_batch_same_loss_gradients_and_buffers(device):
    ours, theirs = make_pair(device)
    (X, Y), = make_batches(1)
    ours_loss, torch_loss = forward_both(ours, theirs, device, X, Y)
    np.testing.assert_allclose(ours_loss.item(), torch_loss.item(), **TOL)
    ours_loss.backward()
    torch_loss.backward()
    assert_same_state(ours, theirs, "gradient", grads=True)
    assert_same_state(ours, theirs, "after one forward")  # the running buffers moved alike


@pytest.fixture(scope="module")
def trained(device):
    """Both models after STEPS SGD steps on the same batches, and both loss curves."""
    ours, theirs = make_pair(device)
    ours_opt, torch_opt = optim.SGD(ours.parameters(), LR), torch.optim.SGD(theirs.parameters(), LR)
    ours_curve, torch_curve = [], []
    for X, Y in make_batches(STEPS):
        ours_loss, torch_loss = forward_both(ours, theirs, device, X, Y)
        ours_opt.zero_grad()
        torch_opt.zero_grad()
        ours_loss.backward()
        torch_loss.backward()
        ours_opt.step()
        torch_opt.step()
        ours_curve.append(ours_loss.item())
        torch_curve.append(torch_loss.item())
    return ours, theirs, ours_curve, torch_curve


def test_training_same_losses_every_step(trained):
    _, _, ours_curve, torch_curve = trained
    np.testing.assert_allclose(ours_curve, torch_curve, **TOL)


def test_training_same_parameters_and_buffers(trained):
    ours, theirs, _, _ = trained
    assert_same_state(ours, theirs, f"after {STEPS} steps")


def test_eval_mode_same_logits_after_training(trained, device):
    ours, theirs, _, _ = trained
    ours.eval()
    theirs.eval()
    X = np.random.default_rng(7).integers(0, VOCAB, size=(5, PRESETS["hier76k"]["block_size"]))
    with torch.no_grad():
        expected = theirs(torch.tensor(X)).numpy()
    np.testing.assert_allclose(ours(Tensor(X, device=device)).numpy(), expected, **TOL)
    # one context at a time works in eval mode (no batch statistics) and gives the same logits
    np.testing.assert_allclose(ours(Tensor(X[:1], device=device)).numpy(), expected[:1], **TOL)
