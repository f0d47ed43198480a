"""torch.optim.Adam and AdamW against torch's, torch.cuda's answers, and a captured GPT-style
training step (attention, layer norm, AdamW) replaying the eager one bit for bit.

Both optimisers run many steps on the same small problem in both libraries, with
parameter groups of their own weight decay (as GPT code builds them: no decay for
biases and norms); the parameters must stay within float32 rounding of torch's.
"""
import numpy as np
import pytest
import torch

import tinygrad_wave as tw
import tinygrad_wave.nn as nn
import tinygrad_wave.nn.functional as F
from tinygrad_wave import jit

from conftest import cupy_as, host

rng = np.random.default_rng(5)
W0, B0, X = (rng.standard_normal(s) for s in ((5, 3), (3,), (7, 5)))


def train(lib, optimizer, dtype, steps=40, **options):
    """`steps` updates of a tanh regression; the learning rate drops at step 25 through param_groups."""
    w = lib.tensor(W0.astype(dtype), requires_grad=True)
    b = lib.tensor(B0.astype(dtype), requires_grad=True)
    x = lib.tensor(X.astype(dtype))
    groups = [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}]
    opt = getattr(lib.optim, optimizer)(groups, lr=0.05, **options)
    for step in range(steps):
        if step == 25:
            for group in opt.param_groups:
                group["lr"] = 0.01
        loss = ((x @ w + b).tanh() ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return host(w), host(b), opt


@pytest.mark.parametrize("optimizer", ["Adam", "AdamW"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("options", [{}, {"betas": (0.8, 0.99), "eps": 1e-6}], ids=["defaults", "betas, eps"])
def test_steps_are_torchs(optimizer, dtype, options):
    ours, theirs = train(tw, optimizer, dtype, **options), train(torch, optimizer, dtype, **options)
    tolerance = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b, what in zip(ours[:2], theirs[:2], ("weight", "bias")):
        np.testing.assert_allclose(a, b, err_msg=f"{optimizer} {what}", **tolerance)


def test_adamw_decays_the_weights_adam_does_not():
    """With zero gradients AdamW still shrinks p by (1 - lr wd) per step; Adam adds wd p to a
    gradient, so it moves p too, but by a normalised step: the two differ, as in torch."""
    for name in ("Adam", "AdamW"):
        results = []
        for lib in (tw, torch):
            p = lib.tensor(np.full(3, 2.0), requires_grad=True)
            opt = getattr(lib.optim, name)([p], lr=0.1, weight_decay=0.5)
            for _ in range(3):
                p.grad = lib.zeros(3, dtype=p.dtype)
                opt.step()
            results.append(host(p))
        np.testing.assert_allclose(*results, rtol=1e-12, err_msg=name)


def test_state_dict_resumes_the_same_run():
    """Stopped after 20 steps and loaded into a new optimiser, a run takes the unbroken run's steps."""
    w_full, _, _ = train(tw, "AdamW", np.float64, steps=30)
    w = tw.tensor(W0, requires_grad=True)
    b = tw.tensor(B0, requires_grad=True)
    x = tw.tensor(X)
    groups = lambda: [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}]  # noqa: E731
    opt = tw.optim.AdamW(groups(), lr=0.05)
    for step in range(30):
        if step == 20:  # a new optimiser, from the old one's state
            saved = opt.state_dict()
            assert sorted(saved["state"]) == [0, 1] and saved["state"][0]["step"] == 20.0
            assert saved["param_groups"][0]["params"] == [0] and saved["param_groups"][1]["weight_decay"] == 0.0
            opt = tw.optim.AdamW(groups(), lr=0.05)
            opt.load_state_dict(saved)
        if step == 25:  # train()'s schedule
            for group in opt.param_groups:
                group["lr"] = 0.01
        loss = ((x @ w + b).tanh() ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_array_equal(host(w), w_full)


@pytest.mark.parametrize("optimizer", ["AdamW", "SGD"])
def test_zero_grad_set_to_none_false_zeroes_the_same_tensor(optimizer):
    p = tw.tensor(np.ones(3), requires_grad=True)
    (p * 2).sum().backward()
    grad = p.grad
    opt = getattr(tw.optim, optimizer)([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad  # as torch's: code holding p.grad sees the zeros
    np.testing.assert_array_equal(host(p.grad), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_bad_hyperparameters_are_refused_as_torch_refuses():
    p = tw.tensor(np.ones(3), requires_grad=True)
    for options, message in (({"lr": -1.0}, "Invalid lr"), ({"betas": (0.9, 1.0)}, "Invalid beta"),
                             ({"eps": -1e-8}, "Invalid eps"), ({"weight_decay": -0.1}, "Invalid weight_decay")):
        with pytest.raises(ValueError, match=message):
            tw.optim.AdamW([p], **options)
        with pytest.raises(ValueError):
            torch.optim.AdamW([torch.ones(3, requires_grad=True)], **options)


PARAMETER_MISTAKES = {
    "a lone tensor, not a list of them": (TypeError, lambda p, q: p),
    "an empty list": (ValueError, lambda p, q: []),
    "a group of a set (no fixed order)": (TypeError, lambda p, q: [{"params": {p, q}}]),
    "a tensor in two groups": (ValueError, lambda p, q: [{"params": [p]}, {"params": [p, q], "lr": 0.5}]),
    "a tensor an op made": (ValueError, lambda p, q: [p * 2]),
    "a number": (TypeError, lambda p, q: [p, 3]),
}


@pytest.mark.parametrize("optimizer", ["Adam", "AdamW", "SGD"])
@pytest.mark.parametrize("mistake", PARAMETER_MISTAKES)
def test_parameters_are_refused_where_torch_refuses_them(optimizer, mistake):
    """list(p) of a lone tensor is its rows, copies: the optimiser would step copies and the real
    parameter never; a tensor in two groups would be stepped twice. torch refuses both, and so here."""
    error, params = PARAMETER_MISTAKES[mistake]
    for lib in (tw, torch):
        p, q = lib.ones(2, 2, requires_grad=True), lib.ones(3, requires_grad=True)
        with pytest.raises(error):
            getattr(lib.optim, optimizer)(params(p, q), lr=0.1)


def test_a_group_may_name_one_tensor_and_steps_it_as_torch():
    results = []
    for lib in (tw, torch):
        p = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        opt = lib.optim.Adam([{"params": p}], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
        results.append(host(p.detach()))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


@pytest.mark.parametrize("option", ["amsgrad", "maximize"])
def test_adams_options_it_does_not_have_are_refused_not_ignored(option):
    """As keywords they fail as unknown arguments; in a group's dict, or in a state loaded from
    torch, they are refused by name: ignored, the run would quietly differ from torch's."""
    p = tw.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=option):
        tw.optim.Adam([{"params": [p], option: True}])
    theirs = torch.optim.Adam([torch.ones(2, requires_grad=True)], **{option: True}).state_dict()
    opt = tw.optim.Adam([p])
    with pytest.raises(ValueError, match=option):
        opt.load_state_dict(theirs)
    assert opt.param_groups[0][option] is False  # nothing taken from the refused state


# --- torch.cuda -----------------------------------------------------------------------------------

def test_cuda_is_available_only_where_cupy_sees_a_gpu(without_cupy):
    assert tw.cuda.is_available() is False and tw.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        tw.cuda.synchronize()


def test_cuda_with_a_gpu_seen():
    import cupy_standin  # one device that does nothing when synchronised
    with cupy_as(cupy_standin):
        assert tw.cuda.is_available() is True and tw.cuda.device_count() == 1
        tw.cuda.synchronize()


def test_manual_seed_all_leaves_the_cpu_stream_alone():
    """As torch's: it seeds the GPUs' generators (here there are none), not the CPU's."""
    tw.manual_seed(3)
    first = tw.rand(4).numpy()
    tw.manual_seed(3)
    tw.cuda.manual_seed_all(99)
    np.testing.assert_array_equal(tw.rand(4).numpy(), first)
    with pytest.raises(TypeError):
        tw.cuda.manual_seed_all(1.5)


# --- a captured GPT-style step ------------------------------------------------------------------------

def attention_model(clear=lambda model, optimizer: optimizer.zero_grad(set_to_none=True)):
    """One causal self-attention block with layer norm, the ops of gpt.py (no dropout: a capture
    refuses host randomness); `clear` forgets the gradients before backward."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.position = nn.Embedding(11, 16), nn.Embedding(8, 16)
            self.ln = nn.LayerNorm(16)
            self.qkv = nn.ModuleList([nn.Linear(16, 16, bias=False) for _ in range(3)])
            self.register_buffer("tril", tw.tril(tw.ones(8, 8)))
            self.ffwd = nn.Sequential(nn.Linear(16, 32), nn.GELU(approximate="tanh"), nn.Linear(32, 11))

        def forward(self, idx):
            positions = tw.arange(idx.shape[1]).unsqueeze(0)  # made inside, as makemore.py's are
            x = self.ln(self.embed(idx) + self.position(positions))
            q, k, v = (layer(x) for layer in self.qkv)
            scores = (q @ k.transpose(-2, -1) * 16 ** -0.5).masked_fill(self.tril == 0, float("-inf"))
            return self.ffwd(x + F.softmax(scores, dim=-1) @ v)

    tw.manual_seed(11)
    model = Block()
    optimizer = tw.optim.AdamW(model.parameters(), lr=3e-3)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb).view(-1, 11), yb.view(-1))  # flattened inside, as gpt.py does
        clear(model, optimizer)
        loss.backward()
        optimizer.step()
        return loss
    return model, optimizer, step


CLEARS = {"optimizer.zero_grad": lambda model, optimizer: optimizer.zero_grad(set_to_none=True),
          "model.zero_grad": lambda model, optimizer: model.zero_grad(set_to_none=True)}  # makemore.py's


@pytest.mark.parametrize("clear", CLEARS.values(), ids=CLEARS.keys())
def test_a_captured_attention_step_with_adamw_replays_bit_for_bit(clear):
    eager_model, eager_opt, eager_step = attention_model(clear)
    model, optimizer, step = attention_model(clear)
    replayed = jit.capture(step)
    data = np.random.default_rng(2).integers(0, 11, (60, 4, 9))
    for i, batch in enumerate(data):
        if i == 40:  # a schedule sets the groups' lr between steps: the replayed step() reads it
            for opt in (eager_opt, optimizer):
                opt.param_groups[0]["lr"] = 1e-3
        xb, yb = tw.tensor(batch[:, :8]), tw.tensor(batch[:, 1:])
        a, b = eager_step(xb, yb), replayed(xb, yb)
        assert a.numpy().tobytes() == b.numpy().tobytes(), f"loss at step {i}"
    assert replayed.replayed == 58
    eager_params, params = list(eager_model.named_parameters()), list(model.named_parameters())
    assert len(eager_params) == len(params)
    for (name, a), (_, b) in zip(eager_params, params):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name


def test_bad_targets_made_inside_a_captured_step_raise_at_their_op_as_in_eager_mode():
    """targets.view(-1) is computed inside the step, so the replay checks it at cross-entropy's
    own step, not before the call: a bad target raises IndexError there, as eager mode does,
    after the forward before it ran (and nothing after it)."""
    model, optimizer, step = attention_model()
    replayed = jit.capture(step)
    batch = np.random.default_rng(0).integers(0, 11, (4, 9))
    for _ in range(3):
        replayed(tw.tensor(batch[:, :8]), tw.tensor(batch[:, 1:]))
    assert replayed.replayed == 1
    weights = [p.numpy().copy() for p in model.parameters()]
    bad = batch[:, 1:].copy()
    bad[2, 5] = 11
    for run in (step, replayed):
        with pytest.raises(IndexError, match="11" if run is step else "out of range in this call"):
            run(tw.tensor(batch[:, :8]), tw.tensor(bad))
    assert all(np.array_equal(w, p.numpy()) for w, p in zip(weights, model.parameters()))  # no step taken
    replayed(tw.tensor(batch[:, :8]), tw.tensor(batch[:, 1:]))  # and the next good batch replays
    assert (replayed.replayed, replayed.eager) == (2, 2)
