"""makemore part 4 ("becoming a backprop ninja"), exercise 1, as a test.

The forward pass of the batch-normed MLP is broken into small ops, every
intermediate calls retain_grad(), and the engine's gradient of each one is
compared with (1) a manual backward written out below in NumPy, one chain-rule
step per line, and (2) the same forward run in torch. All in float64, where
the three agree to 1e-12: the engine is the chain rule, nothing more.

The forward is written ONCE and runs on both libraries, as a learner's
notebook code should: only `tanh` (torch.tanh or tinygrad_wave.tanh) differs.
"""
import numpy as np
import pytest
import torch

import tinygrad_wave as tw
import tinygrad_wave.functional as F
from tinygrad_wave import Tensor

from conftest import host

VOCAB, BLOCK, N_EMBD, N_HIDDEN, BATCH = 27, 3, 10, 64, 32
EPS = 1e-5
TOLERANCE = 1e-12
# zero in exact arithmetic, as the lecture points out: subtracting the row max does not
# change the softmax, and batch norm subtracts the batch mean, which cancels b1
CANCELLED = {"logit_maxes", "b1"}


def make_parameters(rng):
    """As in the exercise: small random weights everywhere (b1 too, though batch norm
    cancels it) so that no gradient is trivially zero or one."""
    fan_in = N_EMBD * BLOCK
    return {
        "C": rng.standard_normal((VOCAB, N_EMBD)),
        "W1": rng.standard_normal((fan_in, N_HIDDEN)) * (5 / 3) / fan_in ** 0.5,
        "b1": rng.standard_normal(N_HIDDEN) * 0.1,
        "W2": rng.standard_normal((N_HIDDEN, VOCAB)) * 0.1,
        "b2": rng.standard_normal(VOCAB) * 0.1,
        "bngain": rng.standard_normal((1, N_HIDDEN)) * 0.1 + 1.0,
        "bnbias": rng.standard_normal((1, N_HIDDEN)) * 0.1,
    }


def forward(tanh, C, W1, b1, W2, b2, bngain, bnbias, Xb, Yb):
    """The exercise's forward, chunked into steps we can backward one at a time.
    Returns the intermediates by name, in forward order, the loss last."""
    n = Xb.shape[0]
    emb = C[Xb]                                         # (n, block, n_embd) embedded characters
    embcat = emb.view(emb.shape[0], -1)                 # concatenated
    hprebn = embcat @ W1 + b1                           # Linear, as a matmul
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)       # batch norm, step by step
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff ** 2
    bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)  # Bessel's correction (n - 1)
    bnvar_inv = (bnvar + EPS) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = tanh(hpreact)
    logits = h @ W2 + b2
    logit_maxes = logits.max(1, keepdim=True).values    # cross-entropy, step by step
    norm_logits = logits - logit_maxes                  # (for numerical stability)
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum ** -1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Yb].mean()
    return dict(emb=emb, embcat=embcat, hprebn=hprebn, bnmeani=bnmeani, bndiff=bndiff, bndiff2=bndiff2,
                bnvar=bnvar, bnvar_inv=bnvar_inv, bnraw=bnraw, hpreact=hpreact, h=h, logits=logits,
                logit_maxes=logit_maxes, norm_logits=norm_logits, counts=counts, counts_sum=counts_sum,
                counts_sum_inv=counts_sum_inv, probs=probs, logprobs=logprobs, loss=loss)


def manual_backward(v, p, Xb, Yb):
    """d loss / d every intermediate and parameter, by hand, from the values `v` of the
    forward (NumPy arrays). Each line is one chain-rule step: d input = local derivative
    times d output, summed over every place the input was used (broadcasting included)."""
    n = Xb.shape[0]
    d = {}
    dlogprobs = np.zeros_like(v["logprobs"])
    dlogprobs[range(n), Yb] = -1.0 / n                 # loss = -mean of the picked entries
    d["logprobs"] = dlogprobs
    d["probs"] = dprobs = dlogprobs / v["probs"]       # d log p = 1 / p
    # probs = counts * counts_sum_inv, the (n, 1) column broadcast over the row
    d["counts_sum_inv"] = dcsi = (v["counts"] * dprobs).sum(1, keepdims=True)
    dcounts = v["counts_sum_inv"] * dprobs
    d["counts_sum"] = dcs = -v["counts_sum"] ** -2 * dcsi  # d x^-1 = -x^-2
    dcounts = dcounts + np.ones_like(v["counts"]) * dcs    # counts_sum = row sum: each count gets dcs
    d["counts"] = dcounts
    d["norm_logits"] = dnorm = v["counts"] * dcounts       # d e^x = e^x = counts
    d["logit_maxes"] = dmax = -dnorm.sum(1, keepdims=True)
    picked = np.eye(VOCAB)[v["logits"].argmax(1)]          # the max picks one logit per row
    d["logits"] = dlogits = dnorm + picked * dmax
    d["h"] = dh = dlogits @ p["W2"].T
    d["W2"] = v["h"].T @ dlogits
    d["b2"] = dlogits.sum(0)
    d["hpreact"] = dhpreact = (1.0 - v["h"] ** 2) * dh      # d tanh = 1 - tanh^2
    d["bngain"] = (v["bnraw"] * dhpreact).sum(0, keepdims=True)
    d["bnbias"] = dhpreact.sum(0, keepdims=True)
    d["bnraw"] = dbnraw = p["bngain"] * dhpreact
    dbndiff = v["bnvar_inv"] * dbnraw
    d["bnvar_inv"] = dbnvar_inv = (v["bndiff"] * dbnraw).sum(0, keepdims=True)
    d["bnvar"] = dbnvar = -0.5 * (v["bnvar"] + EPS) ** -1.5 * dbnvar_inv
    d["bndiff2"] = dbndiff2 = 1.0 / (n - 1) * np.ones_like(v["bndiff2"]) * dbnvar
    d["bndiff"] = dbndiff = dbndiff + 2 * v["bndiff"] * dbndiff2  # bndiff feeds bnraw and bndiff2
    d["bnmeani"] = dbnmeani = -dbndiff.sum(0, keepdims=True)
    d["hprebn"] = dhprebn = dbndiff + 1.0 / n * np.ones_like(v["hprebn"]) * dbnmeani
    d["embcat"] = dembcat = dhprebn @ p["W1"].T
    d["W1"] = v["embcat"].T @ dhprebn
    d["b1"] = dhprebn.sum(0)
    d["emb"] = demb = dembcat.reshape(v["emb"].shape)
    dC = np.zeros_like(p["C"])
    for k in range(n):  # a character used twice in a context, or in two contexts, gets both
        for j in range(Xb.shape[1]):
            dC[Xb[k, j]] += demb[k, j]
    d["C"] = dC
    return d


@pytest.fixture(scope="module")
def exercise():
    """One batch through the chunked forward in tinygrad_wave and in torch, float64,
    every intermediate retaining its gradient; then one backward in each."""
    rng = np.random.default_rng(42)
    p = make_parameters(rng)
    Xb, Yb = rng.integers(0, VOCAB, (BATCH, BLOCK)), rng.integers(0, VOCAB, BATCH)

    ours_p = {k: Tensor(a, requires_grad=True) for k, a in p.items()}
    ours = forward(tw.tanh, **ours_p, Xb=Xb, Yb=Yb)
    torch_p = {k: torch.tensor(a, requires_grad=True) for k, a in p.items()}
    theirs = forward(torch.tanh, **torch_p, Xb=torch.tensor(Xb), Yb=torch.tensor(Yb))
    for t in [*ours.values(), *theirs.values()]:
        t.retain_grad()
    ours["loss"].backward()
    theirs["loss"].backward()
    return dict(p=p, Xb=Xb, Yb=Yb, ours=ours, ours_p=ours_p, theirs=theirs, torch_p=torch_p)


def test_the_26_gradients_match_a_manual_backward(exercise):
    """Every row of the exercise's table: the engine's .grad against the NumPy chain rule."""
    ours, ours_p = exercise["ours"], exercise["ours_p"]
    values = {k: t.numpy() for k, t in ours.items()}
    manual = manual_backward(values, exercise["p"], exercise["Xb"], exercise["Yb"])
    assert len(manual) == 26
    engine = {**{k: host(t.grad) for k, t in ours.items()}, **{k: host(t.grad) for k, t in ours_p.items()}}
    for name, expected in manual.items():
        got = engine[name]
        assert got is not None, f"{name}.grad is None after retain_grad() and backward"
        assert isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype == np.float64, name
        worst = np.abs(got - expected).max()
        assert worst <= TOLERANCE, f"{name}: engine and manual backward differ by {worst:.3g}"
        if name in CANCELLED:
            assert np.abs(got).max() <= TOLERANCE, f"{name}: should be 0 up to rounding"
        else:
            assert np.abs(expected).max() > 1e-6, f"{name}: a trivial gradient proves nothing"


def test_every_intermediate_gradient_matches_torch(exercise):
    ours, theirs = exercise["ours"], exercise["theirs"]
    assert ours["loss"].item() == pytest.approx(theirs["loss"].item(), abs=TOLERANCE)
    assert abs(ours["loss"].item() - np.log(VOCAB)) < 1.5  # a sane loss, near -log(1/27)
    pairs = [*((k, ours[k], theirs[k]) for k in ours), *((k, exercise["ours_p"][k], exercise["torch_p"][k])
                                                          for k in exercise["ours_p"])]
    assert len(pairs) == 27  # the 26 rows, and the loss itself (whose gradient is 1)
    for name, t, ref in pairs:
        np.testing.assert_allclose(t.numpy(), ref.detach().numpy(), rtol=0, atol=TOLERANCE, err_msg=name)
        np.testing.assert_allclose(t.grad, ref.grad.numpy(), rtol=0, atol=TOLERANCE, err_msg=f"d {name}")


def test_fused_ops_give_the_chain_of_small_ops_gradient(exercise):
    """Exercises 2 and 3: cross_entropy and batch_norm are one node each, with the closed
    form; their gradients are the ones the small ops reached step by step."""
    ours, ours_p = exercise["ours"], exercise["ours_p"]
    logits = Tensor(ours["logits"].numpy(), requires_grad=True)
    loss = F.cross_entropy(logits, exercise["Yb"])
    loss.backward()
    assert abs(loss.item() - ours["loss"].item()) <= TOLERANCE
    np.testing.assert_allclose(logits.grad, ours["logits"].grad, rtol=0, atol=TOLERANCE)

    hprebn = Tensor(ours["hprebn"].numpy(), requires_grad=True)
    gain, bias = (Tensor(ours_p[k].numpy(), requires_grad=True) for k in ("bngain", "bnbias"))
    hpreact = F.batch_norm(hprebn, gain, bias, 0, eps=EPS, correction=1)
    np.testing.assert_allclose(hpreact.numpy(), ours["hpreact"].numpy(), rtol=0, atol=TOLERANCE)
    hpreact.backward(ours["hpreact"].grad)
    np.testing.assert_allclose(hprebn.grad, ours["hprebn"].grad, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(gain.grad, ours_p["bngain"].grad, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(bias.grad, ours_p["bnbias"].grad, rtol=0, atol=TOLERANCE)
