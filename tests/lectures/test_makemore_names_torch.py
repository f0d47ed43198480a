"""The tensor names makemore.py uses beyond the lectures', against torch itself: split,
expand, contiguous, roll, topk, torch.pow, F.tanh, F.sigmoid and inference_mode.

Gradients go through the `check` fixture (conftest.py: a random upstream gradient, float64
and float32, CPU and the CUDA stand-in); the shape ops are also in test_ops_torch.py's
SHAPE_OPS and test_gradcheck.py's OPS.
"""
import math

import numpy as np
import pytest
import torch

import tinygrad_wave as tw
import tinygrad_wave.nn.functional as F
from tinygrad_wave import Tensor

from conftest import host


def both(array):
    return Tensor(array), torch.tensor(array)


@pytest.mark.parametrize("args", [(2,), (3, 1), (7, -1), ([1, 2], 0), ([0, 3, 0], 0), ([4, 3], 1), (1, -2)], ids=str)
def test_split_gives_torchs_pieces(rng, args):
    ours, theirs = both(rng.standard_normal((3, 7)))
    pieces, expected = ours.split(*args), theirs.split(*args)
    assert len(pieces) == len(expected)
    for piece, want in zip(pieces, expected):
        np.testing.assert_array_equal(piece.numpy(), want.numpy())
    assert [p.shape for p in tw.split(ours, *args)] == [tuple(p.shape) for p in torch.split(theirs, *args)]


def test_attention_style_split_routes_each_gradient_back(check):
    """makemore's `q, k, v = self.c_attn(x).split(self.n_embd, dim=2)`, each used differently."""
    def attention(x):
        q, k, v = x.split(4, dim=2)
        return (q @ k.transpose(1, 2)) @ v
    check(attention, attention, check.normal(2, 3, 12))


@pytest.mark.parametrize("split", [(0, 0), ([2, 2], 0), ([-1, 4], 0)], ids=str)
def test_split_refuses_what_torch_refuses(split):
    ours, theirs = both(np.zeros((3, 2)))
    with pytest.raises(RuntimeError):
        theirs.split(*split)
    with pytest.raises(RuntimeError, match="split"):
        ours.split(*split)


def test_expand_is_a_view_as_in_torch(check):
    """makemore's RNN: `self.start.expand((b, -1))`, then used twice."""
    check(lambda s: (lambda h: h * 2 + h.tanh())(s.expand((4, -1))),
          lambda s: (lambda h: h * 2 + h.tanh())(s.expand((4, -1))), check.normal(1, 5))
    for lib in (tw, torch):
        x = lib.zeros(3, 1)
        seen = x.expand(3, 4)
        x += 1  # an expand shares its base's memory: the change shows through it
        assert host(seen).tolist() == [[1.0] * 4] * 3


@pytest.mark.parametrize("sizes", [(4, 3), (5,), (-1, 2, 5), (2, 3, 5)], ids=str)
def test_expand_refuses_what_torch_refuses(sizes):
    with pytest.raises(RuntimeError):
        torch.zeros(2, 5).expand(*sizes)
    with pytest.raises(RuntimeError, match="expand"):
        tw.zeros(2, 5).expand(*sizes)


def test_contiguous_copies_only_what_is_not_as_torch(check):
    """makemore's attention: `y.transpose(1, 2).contiguous().view(B, T, C)`."""
    check(lambda y: y.transpose(1, 2).contiguous().view(2, 3, 8),
          lambda y: y.transpose(1, 2).contiguous().view(2, 3, 8), check.normal(2, 4, 3, 2))
    for lib in (tw, torch):
        x = lib.zeros(2, 3)
        assert x.contiguous() is x
        y = x.transpose(0, 1).contiguous()
        y += 1  # a copy: x is untouched
        assert host(x).sum() == 0 and host(y).sum() == 6


@pytest.mark.parametrize("shifts, dims", [(1, 1), (-2, 0), ((1, 2), (0, 1)), (5, None), (-7, -1)], ids=str)
def test_roll_is_torchs(check, shifts, dims):
    check(lambda x: tw.roll(x, shifts, dims), lambda x: torch.roll(x, shifts, dims), check.normal(3, 4))


def test_mlp_style_roll_of_ids_then_a_write_as_torch():
    """makemore's MLP: roll the context one step right, then write <BLANK> into column 0."""
    results = []
    for lib in (tw, torch):
        idx = lib.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
        rolled = lib.roll(idx, 1, 1)
        rolled[:, 0] = 27
        results.append((host(idx).tolist(), host(rolled).tolist()))
    assert results[0] == results[1] == ([[1, 2, 3, 4], [5, 6, 7, 8]], [[27, 1, 2, 3], [27, 5, 6, 7]])


def test_roll_refuses_shifts_without_their_dims():
    for lib in (tw, torch):
        with pytest.raises(RuntimeError, match="align"):
            lib.roll(lib.zeros(2, 3), (1, 2), 0)


@pytest.mark.parametrize("k, dim, largest", [(1, -1, True), (3, 1, True), (2, 0, False), (4, -1, False), (0, 1, True)],
                         ids=str)
def test_topk_values_and_indices_are_torchs(check, k, dim, largest):
    """Distinct values: with ties torch's order of equal elements is its own."""
    ours, theirs = check(lambda x: tw.topk(x, k, dim=dim, largest=largest).values,
                         lambda x: torch.topk(x, k, dim=dim, largest=largest).values, check.normal(3, 5))
    x = check.normal(3, 5)
    np.testing.assert_array_equal(host(Tensor(x, device=check.device).topk(k, dim, largest).indices),
                                  torch.tensor(x).topk(k, dim, largest).indices.numpy())


def test_top_k_sampling_as_makemore_writes_it():
    """generate(): `v, _ = torch.topk(logits, top_k); logits[logits < v[:, [-1]]] = -float('Inf')`
    and the greedy `_, idx_next = torch.topk(probs, k=1, dim=-1)`."""
    logits = np.random.default_rng(5).standard_normal((4, 27)).astype(np.float32)
    results = []
    for lib in (tw, torch):
        z = lib.tensor(logits)
        v, _ = lib.topk(z, 5)
        z[z < v[:, [-1]]] = -float("Inf")
        probs = F.softmax(z, dim=-1) if lib is tw else torch.nn.functional.softmax(z, dim=-1)
        _, idx_next = lib.topk(probs, k=1, dim=-1)
        results.append((host(probs), host(idx_next)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert (results[0][0] > 0).sum(1).tolist() == [5] * 4


def test_topk_refuses_k_past_the_dim():
    for lib in (tw, torch):
        with pytest.raises(RuntimeError, match="out of range"):
            lib.topk(lib.zeros(2, 3), 4)


def test_pow_and_the_activations_as_torch(check):
    """makemore's NewGELU, `torch.pow(x, 3.0)` inside torch.tanh, and its GRU's F.sigmoid / F.tanh."""
    def gelu(lib):
        return lambda x: 0.5 * x * (1.0 + lib.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * lib.pow(x, 3.0))))
    check(gelu(tw), gelu(torch), check.normal(3, 4))
    check(lambda x: F.sigmoid(x) * F.tanh(x), lambda x: torch.nn.functional.sigmoid(x) * torch.nn.functional.tanh(x),
          check.normal(2, 5))
    check(lambda x: tw.pow(x, 2) + tw.pow(2.0, x), lambda x: torch.pow(x, 2) + torch.pow(2.0, x), check.normal(4))


def test_inference_mode_as_torch():
    """makemore's `@torch.inference_mode()` above evaluate(); mode=False turns gradients on."""
    for lib in (tw, torch):
        w = lib.ones(2, requires_grad=True)

        @lib.inference_mode()
        def evaluate():
            return (w * 2).requires_grad
        assert evaluate() is False and evaluate() is False and (w * 2).requires_grad
        with lib.inference_mode(False):
            assert (w * 2).requires_grad
        with lib.no_grad(), lib.inference_mode(False):
            assert (w * 2).requires_grad
        assert (w * 2).requires_grad
