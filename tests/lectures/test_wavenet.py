"""The WaveNet and what it stands on: part 5's hierarchical model IS a stack of
causal convolutions, whole names give the same (context, target) pairs as
build_dataset, and the WaveNet at every position computes what it computes on
one context at a time -- so its per-character losses compare with the other models'.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, manual_seed, no_grad
from tinygrad_wave.data import IGNORE, build_dataset, build_sequences, build_vocab, pack
from tinygrad_wave.gradcheck import gradcheck
from tinygrad_wave.models import WaveNet, as_convolutions, build_model
from tinygrad_wave.optim import SGD
from conftest import host

WORDS = ["emma", "x", "olivia", "ab", "zzzzzzzzzzzzzzz", "ava"]
ITOS = build_vocab(WORDS)


# --- cross-entropy that ignores padding ---------------------------------------------------------

@pytest.mark.parametrize("targets", [[2, -100, 0, -100, 4, 1], [-100, 3, -100, -100, -100, -100]], ids=str)
def test_cross_entropy_ignore_index(check, targets):
    """Rows with target -100 are left out of the mean and get a zero gradient, as in torch."""
    y = np.array(targets)
    check(lambda z: F.cross_entropy(z, y), lambda z: TF.cross_entropy(z, torch.tensor(y)), check.normal(6, 5))


def test_cross_entropy_other_ignore_index(check):
    y = np.array([1, 7, 7, 0])
    check(lambda z: F.cross_entropy(z, y, ignore_index=7),
          lambda z: TF.cross_entropy(z, torch.tensor(y), ignore_index=7), check.normal(4, 3))


def test_cross_entropy_ignore_index_gradcheck(device):
    z = Tensor(np.random.default_rng(0).standard_normal((5, 4)), requires_grad=True, device=device)
    assert gradcheck(lambda z: F.cross_entropy(z, np.array([3, -100, 0, 0, -100])), [z])


def test_cross_entropy_still_rejects_other_negative_targets():
    with pytest.raises(IndexError, match=r"must lie in \[0, 4\) \(or be ignore_index=-100\)"):
        F.cross_entropy(Tensor(np.zeros((2, 4))), np.array([-1, 2]))


# --- whole names as training data ---------------------------------------------------------------

def pairs_from_sequences(X, Y, block_size):
    """(context, target) for every position that has a target, name by name."""
    return [(tuple(X[w, p - block_size + 1:p + 1]), Y[w, p])
            for w in range(len(X)) for p in range(X.shape[1]) if Y[w, p] != IGNORE]


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_sequences_give_build_datasets_pairs(block_size):
    X, Y = build_sequences(WORDS, block_size, ITOS)
    assert X.shape == Y.shape == (len(WORDS), block_size + 15)
    Xd, Yd = build_dataset(WORDS, block_size, ITOS)
    assert pairs_from_sequences(X, Y, block_size) == list(zip(map(tuple, Xd), Yd))


@pytest.mark.parametrize("block_size", [2, 8])
def test_packed_names_give_build_datasets_pairs(block_size):
    """Names laid end to end (any order, repeats allowed): every target position
    sees its own block_size '.' prefix, never the name before it."""
    X, Y = build_sequences(WORDS, block_size, ITOS)
    ix = np.array([2, 0, 4, 0, 1])
    xs, ys = pack(X, Y, ix, block_size)
    assert xs.shape == (1, sum(block_size + len(WORDS[i]) for i in ix)) and ys.shape == (xs.shape[1],)
    padded = np.concatenate([np.zeros(block_size - 1, np.int64), xs[0]])  # the conv's zeros before the start
    pairs = [(tuple(padded[p:p + block_size]), ys[p]) for p in range(len(ys)) if ys[p] != IGNORE]
    Xd, Yd = build_dataset([WORDS[i] for i in ix], block_size, ITOS)
    assert pairs == list(zip(map(tuple, Xd), Yd))


# --- part 5's hierarchical model is a stack of convolutions --------------------------------------

@pytest.mark.parametrize("hierarchical, block_size", [(True, 8), (True, 4), (False, 3)], ids=str)
def test_part5_models_are_stacks_of_dilated_convolutions(rng, hierarchical, block_size):
    """FlattenConsecutive(2) + Linear at level i is a K = 2 convolution with dilation 2^i
    whose weight is the Linear's, reshaped (2 C, H) -> (2, C, H): the first half of the
    Linear's rows multiplies the earlier step (and the flat MLP is one convolution with
    a kernel of block_size). Read at the last position, the convolutions compute the
    same logits, and the same weight gradients, as the model -- in eval mode, where
    batch norm uses the same running buffers in both."""
    manual_seed(3)
    model = build_model(27, block_size, n_embd=5, n_hidden=6, hierarchical=hierarchical).to(dtype="float64").eval()
    for bn in (layer for layer in model.layers if isinstance(layer, nn.BatchNorm1d)):  # trained-looking
        bn.running_mean.data = rng.standard_normal(6)
        bn.running_var.data = rng.uniform(0.5, 2.0, 6)
        bn.gamma.data, bn.beta.data = rng.uniform(0.5, 2.0, 6), rng.standard_normal(6)
    convs = as_convolutions(model).eval()
    linears = [layer for layer in model.layers[:-1] if isinstance(layer, nn.Linear)]
    kernels = [layer for layer in convs.layers if isinstance(layer, nn.Conv1d)]
    expected = [(2, 2 ** i) for i in range(len(linears))] if hierarchical else [(block_size, 1)]
    assert [(conv.kernel_size, conv.dilation) for conv in kernels] == expected

    X = rng.integers(0, 27, (7, block_size))
    logits, conv_logits = model(X), convs(X)[:, -1]
    np.testing.assert_allclose(conv_logits.numpy(), logits.numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(logits.shape)
    logits.backward(g)
    conv_logits.backward(g)
    for linear, conv in zip(linears, kernels):
        np.testing.assert_allclose(conv.weight.grad.reshape(linear.weight.shape), linear.weight.grad,
                                   rtol=1e-10, atol=1e-12)


# --- the WaveNet ----------------------------------------------------------------------------------

def small_wavenet(block_size=8, dropout=0.0, dtype="float64"):
    manual_seed(5)
    return WaveNet(len(ITOS), block_size, n_embd=4, n_hidden=6, dropout=dropout).to(dtype=dtype)


def test_wavenet_shapes_and_layers():
    model = small_wavenet(block_size=16)
    assert [b.filter.dilation for b in model.blocks] == [1, 2, 4, 8]
    assert model.blocks[-1].residual is None and model.blocks[0].residual is not None
    out = model(np.zeros((3, 11), np.int64))
    assert out.shape == (3, 11, len(ITOS))
    assert repr(model.blocks[2].gate) == "Conv1d(4, 6, kernel_size=2, dilation=4)"
    printed = repr(model)  # torch's style: every layer, indented under its block
    assert printed.startswith("WaveNet(\n  (embedding): Embedding(11, 4)\n  (blocks.0): ResidualBlock(\n")
    assert "    (gate): Conv1d(4, 6, kernel_size=2, dilation=8)\n" in printed
    assert printed.count("(residual)") == 3 and printed.endswith("  (logits): Conv1d(6, 11, kernel_size=1)\n)")


@pytest.mark.parametrize("block_size", [0, 3, 12])
def test_wavenet_needs_a_power_of_2(block_size):
    with pytest.raises(ValueError, match="power of 2"):
        WaveNet(27, block_size, 4, 6)


@pytest.mark.parametrize("block_size", [4, 8])
def test_wavenet_on_whole_names_equals_wavenet_on_contexts(block_size):
    """In eval mode the WaveNet at every position of the packed names gives, position by
    position, the logits it gives on build_dataset's contexts read at the last position;
    so the mean loss over a split is the same number either way."""
    model = small_wavenet(block_size, dropout=0.3).eval()
    X, Y = build_sequences(WORDS, block_size, ITOS)
    xs, ys = pack(X, Y, np.arange(len(WORDS)), block_size)
    Xd, Yd = build_dataset(WORDS, block_size, ITOS)
    with no_grad():
        every_position = model(xs)[0].numpy()[ys != IGNORE]
        one_at_a_time = model(Xd).numpy()[:, -1]
        np.testing.assert_allclose(every_position, one_at_a_time, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(F.cross_entropy(model(xs)[0], ys).item(),
                                   F.cross_entropy(model(Xd)[:, -1], Yd).item(), rtol=1e-12)


def test_wavenet_gradcheck(device, rng):
    """Every parameter of a small WaveNet (two blocks) against central differences,
    through the loss on packed names."""
    model = small_wavenet(block_size=4).to(device=device)
    X, Y = build_sequences(WORDS[:3], 4, ITOS)
    xs, ys = pack(X, Y, np.arange(3), 4)
    params = model.parameters()
    for p in params:  # biases too, so that no gradient hides behind a zero
        p.data = rng.standard_normal(p.shape) * 0.5

    def loss(*_):  # gradcheck perturbs the parameters in place; the model reads them
        return F.cross_entropy(model(Tensor(xs, device=device))[0], Tensor(ys, device=device))

    assert gradcheck(loss, params)


def test_wavenet_learns_names():
    """Three hundred SGD steps with momentum on packed batches of 16 names: the loss falls
    well below the uniform guess, log(vocabulary)."""
    words = ["anna", "emma", "ella", "ava", "mia", "isla", "lila", "nora", "zoe", "ivy"] * 5
    itos = build_vocab(words)
    manual_seed(0)
    model = WaveNet(len(itos), 8, n_embd=8, n_hidden=16, dropout=0.1)
    X, Y = build_sequences(words, 8, itos)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    rng = np.random.default_rng(0)
    for _ in range(300):
        xs, ys = pack(X, Y, rng.integers(0, len(words), 16), 8)
        loss = F.cross_entropy(model(xs)[0], ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.9 * np.log(len(itos)) and np.mean(losses[-20:]) < 0.6 * losses[0]
