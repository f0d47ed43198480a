"""teach.cmp: the gradient table of makemore part 4, against the engine and against torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, teach


@pytest.fixture
def mlp(rng):
    """One step of a small MLP in float64 (x @ W1 + b1, tanh, @ W2, cross-entropy),
    with the same leaves in torch; backward has run in both."""
    arrays = dict(x=rng.standard_normal((7, 5)), W1=rng.standard_normal((5, 6)), b1=rng.standard_normal(6),
                  W2=rng.standard_normal((6, 4)))
    y = rng.integers(0, 4, 7)
    ours = {k: Tensor(v, requires_grad=k != "x") for k, v in arrays.items()}
    theirs = {k: torch.tensor(v, requires_grad=k != "x") for k, v in arrays.items()}
    h = (ours["x"] @ ours["W1"] + ours["b1"]).tanh()
    F.cross_entropy(h @ ours["W2"], y).backward()
    TF.cross_entropy(torch.tanh(theirs["x"] @ theirs["W1"] + theirs["b1"]) @ theirs["W2"],
                     torch.tensor(y)).backward()
    return arrays, y, ours, theirs


def manual_backward(arrays, y):
    """The same gradients derived by hand, in NumPy."""
    x, W1, b1, W2 = arrays["x"], arrays["W1"], arrays["b1"], arrays["W2"]
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    dlogits = probs.copy()
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dh = dlogits @ W2.T
    dhpre = (1 - h ** 2) * dh
    return dict(W2=h.T @ dlogits, W1=x.T @ dhpre, b1=dhpre.sum(0))


def test_a_hand_derived_gradient_matches_the_engine_and_torch(mlp):
    arrays, y, ours, theirs = mlp
    for name, manual in manual_backward(arrays, y).items():
        row = teach.cmp(name, manual, ours[name])
        assert row.name == name and row.approx, str(row)
        assert row.maxdiff < 1e-12, str(row)
        assert teach.cmp(name, theirs[name].grad.numpy(), ours[name]).approx  # torch agrees


def test_exact_approximate_and_maxdiff_tell_apart_rounding_from_a_mistake(mlp):
    _, _, ours, _ = mlp
    W1 = ours["W1"]
    same = teach.cmp("W1", W1.grad.numpy(), W1)
    assert (same.exact, same.approx, same.maxdiff) == (True, True, 0.0)

    nudged = W1.grad.numpy()
    nudged[2, 3] += 1e-10  # rounding-sized: not exact, still approximately equal
    row = teach.cmp("W1", nudged, W1)
    assert (row.exact, row.approx) == (False, True)
    assert row.maxdiff == pytest.approx(1e-10, rel=1e-3)

    wrong = W1.grad.numpy()
    wrong[0, 0] += 0.01  # a real mistake
    row = teach.cmp("W1", wrong, W1)
    assert (row.exact, row.approx) == (False, False)
    assert row.maxdiff == pytest.approx(0.01)


def test_the_manual_gradient_may_be_a_tensor(mlp):
    _, _, ours, _ = mlp
    assert teach.cmp("b1", Tensor(ours["b1"].grad), ours["b1"]).exact


def test_str_is_the_notebook_line():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (t * 3.0).sum().backward()
    assert str(teach.cmp("dt", np.array([3.0, 3.0]), t)) == \
        "dt              | exact: True  | approximate: True  | maxdiff: 0.0"
    assert str(teach.cmp("dt", np.array([3.0, 3.5]), t)) == \
        "dt              | exact: False | approximate: False | maxdiff: 0.5"


def test_an_intermediate_without_a_gradient_says_to_call_retain_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    h = x * 2.0
    h.sum().backward()
    with pytest.raises(RuntimeError, match=r"retain_grad\(\) before backward"):
        teach.cmp("h", np.ones(3), h)


def test_a_shape_mismatch_names_both_shapes():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        teach.cmp("x", np.ones((3, 2)), x)


def test_part_4_intermediates_by_hand_match_the_retained_gradients(rng):
    """makemore part 4's softmax chain, each intermediate retained and derived by hand."""
    n, y = 6, rng.integers(0, 5, 6)
    logits = Tensor(rng.standard_normal((n, 5)), requires_grad=True)
    logit_maxes = logits.max(1, keepdim=True).values
    norm_logits = logits - logit_maxes
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdims=True)
    counts_sum_inv = counts_sum ** -1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), y].mean()
    chain = dict(logprobs=logprobs, probs=probs, counts_sum_inv=counts_sum_inv, counts_sum=counts_sum,
                 counts=counts, norm_logits=norm_logits, logit_maxes=logit_maxes)
    for t in chain.values():
        t.retain_grad()
    loss.backward()

    d = {}
    d["logprobs"] = np.zeros((n, 5))
    d["logprobs"][range(n), y] = -1.0 / n
    d["probs"] = d["logprobs"] / probs.numpy()
    d["counts_sum_inv"] = (counts.numpy() * d["probs"]).sum(1, keepdims=True)
    d["counts_sum"] = -counts_sum.numpy() ** -2 * d["counts_sum_inv"]
    d["counts"] = counts_sum_inv.numpy() * d["probs"] + d["counts_sum"]
    d["norm_logits"] = counts.numpy() * d["counts"]
    d["logit_maxes"] = -d["norm_logits"].sum(1, keepdims=True)
    dlogits = d["norm_logits"].copy()
    dlogits[range(n), logits.numpy().argmax(1)] += d["logit_maxes"][:, 0]
    rows = [teach.cmp(name, d[name], t) for name, t in chain.items()] + [teach.cmp("logits", dlogits, logits)]
    assert all(row.approx and row.maxdiff < 1e-12 for row in rows), "\n".join(map(str, rows))
    assert teach.cmp("logprobs", d["logprobs"], logprobs).exact


def test_the_same_infinities_in_the_same_places_differ_by_nothing():
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (t * np.array([np.inf, -np.inf, 0.5])).backward(np.ones(3))  # (a sum would add inf and -inf)
    with np.errstate(invalid="raise"):  # no inf - inf computed on the way
        row = teach.cmp("t", np.array([np.inf, -np.inf, 0.5]), t)
    assert (row.exact, row.approx, row.maxdiff) == (True, True, 0.0)
    row = teach.cmp("t", np.array([np.inf, np.inf, 0.5]), t)  # a wrong sign of infinity is infinitely off
    assert (row.exact, row.approx, row.maxdiff) == (False, False, np.inf)


def test_a_placeholder_says_not_yet():
    t = Tensor(np.ones(3), requires_grad=True)
    t.sum().backward()
    row = teach.cmp("dt", ..., t)
    assert (row.written, row.exact, row.approx) == (False, False, False)
    assert str(row) == "dt              | not yet: replace the ... with your code"


def test_a_table_of_comparisons_lines_up_long_names():
    t = Tensor(np.ones(2), requires_grad=True)
    t.sum().backward()
    names = ["dt", "layers.10.weight", "blocks.0.filter.weight"]
    lines = str(teach.Table(teach.cmp(name, np.ones(2), t) for name in names)).splitlines()
    assert [line.index("| exact") for line in lines] == [len("blocks.0.filter.weight") + 1] * 3
    assert lines[0].startswith("dt ") and lines[1].startswith("layers.10.weight ")
