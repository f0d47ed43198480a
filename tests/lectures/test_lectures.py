"""The makemore lectures run on tinygrad_wave with only their imports switched, and give
torch's numbers: the same counts, sampled names and losses as the lecture's notebooks show.

tests/support/lecture_code.py holds code in the lectures' style (parts 1-5), written against the
module it is given as `torch`; each test here runs it on PyTorch and on tinygrad_wave and
compares the results. Integer results (counts, indices, sampled names) must be equal;
floats agree to float32 rounding, which is all that separates two float32 libraries
doing the same arithmetic (BLAS sums in another order, exp and log to within an ulp).
"""
import numpy as np
import pytest
import torch

import tinygrad_wave
import tinygrad_wave.nn.functional
from tinygrad_wave.data import DEFAULT_PATH, load_words

import lecture_code

LIBRARIES = {"torch": (torch, torch.nn.functional), "tinygrad_wave": (tinygrad_wave, tinygrad_wave.nn.functional)}


@pytest.fixture(scope="module")
def words():
    return load_words(DEFAULT_PATH)


def run_both(part, words, **kwargs):
    """{library: (what it returned, what it printed)} for one lecture part."""
    results = {}
    for name, (library, functional) in LIBRARIES.items():
        # Some lecture lines draw from the global generator unseeded (part 4's bngain), and
        # torch seeds that one afresh in every process: both start from the same seed here.
        library.manual_seed(1234)
        printed = []
        results[name] = getattr(lecture_code, part)(library, functional, words, printed.append, **kwargs), printed
    return results["tinygrad_wave"], results["torch"]


def close(ours, theirs, what, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                               rtol=rtol, atol=atol, err_msg=what)


def test_part1_counts_and_the_bigram_names_are_torchs(words):
    """Every name counted, then the lecture's check: with g = Generator().manual_seed(2147483647),
    the first names the count model samples."""
    (ours, printed), (theirs, _) = run_both("part1_counts", words)
    assert ours["N"] == theirs["N"]
    assert ours["first"] == theirs["first"] and ours["hundred"] == theirs["hundred"]
    close(ours["q"], theirs["q"], "torch.rand(3, generator=g)", rtol=0, atol=0)
    assert ours["names"] == theirs["names"], printed
    close(ours["nll"], theirs["nll"], "average negative log-likelihood", rtol=1e-6)


def test_part1_the_neural_bigram_learns_as_torchs(words):
    (ours, _), (theirs, _) = run_both("part1_network", words[:2000])
    close(ours["losses"], theirs["losses"], "losses of 5 gradient steps")
    close(ours["W"], theirs["W"], "W after 5 steps", atol=1e-4)
    close(ours["nlls"], theirs["nlls"], "nlls")
    assert ours["names"] == theirs["names"]


def test_part2_the_mlps_losses_and_names_are_torchs(words):
    """Part 2's first printed losses: torch.randint batches from torch.manual_seed(42), weights
    from the part's generator, the learning-rate search's 10**linspace."""
    (ours, _), (theirs, _) = run_both("part2_mlp", words)
    close(ours["lossi"][:20], theirs["lossi"][:20], "the first 20 losses (log10)")
    close(ours["lossi"], theirs["lossi"], "300 losses (log10)", rtol=1e-3, atol=1e-3)
    close(ours["dev"], theirs["dev"], "dev loss", rtol=1e-3)
    close(ours["lri"], theirs["lri"], "lre", rtol=1e-6)
    assert ours["names"] == theirs["names"]


def test_part3_batch_norm_by_hand_as_torch(words):
    (ours, _), (theirs, _) = run_both("part3_manual_batchnorm", words)
    close(ours["lossi"], theirs["lossi"], "losses (log10)", rtol=1e-3, atol=1e-4)
    close([ours["train"], ours["val"]], [theirs["train"], theirs["val"]], "train/val", rtol=1e-3)


def test_part3_layers_statistics_as_torch(words):
    """The pytorchified layers, retain_grad on every layer.out, part 3's health statistics
    with '%.2f' % tensor, torch.histogram and the update-to-data ratios."""
    (ours, printed), (theirs, torch_printed) = run_both("part3_classes", words)
    assert len(printed) == len(torch_printed)
    close(ours["lossi"], theirs["lossi"], "losses (log10)", rtol=1e-3, atol=1e-4)
    close(ours["stats"], theirs["stats"], "activation and gradient statistics", rtol=1e-2, atol=1e-5)
    # parameters[5] is the second Linear's bias, just before a batch norm that subtracts the
    # mean again: its true gradient is 0 (the lecture's point about biases before batch norm),
    # so both libraries' .grad is rounding noise, and so is the data it builds up from zero:
    # their ratio is a ratio of two noises, not comparable between libraries
    noise = 5
    ours_ud, theirs_ud = (np.delete(np.asarray(ud), noise, axis=1) for ud in (ours["ud"], theirs["ud"]))
    close(ours_ud, theirs_ud, "log10 update:data ratios", atol=1e-2)


def test_part4_manual_backprop_matches_the_engine_as_it_matches_torch(words):
    """Exercises 1-3 outside no_grad: dC[ix] += demb[k, j], dlogits[range(n), Yb] -= 1 and
    friends change tensors that are in the graph, as torch lets them."""
    (ours, printed), (theirs, _) = run_both("part4_backprop", words)
    close(ours["loss"], theirs["loss"], "the chunked loss", rtol=1e-6)
    assert len(ours["rows"]) == len(theirs["rows"])
    for (row, maxdiff), (torch_row, _) in zip(ours["rows"], theirs["rows"]):
        assert "approximate: True" in row and maxdiff < 1e-6, row
        assert row.split("|")[0] == torch_row.split("|")[0]


def test_part4_training_with_the_manual_backward(words):
    (ours, _), (theirs, _) = run_both("part4_training_by_hand", words)
    close(ours["lossi"], theirs["lossi"], "losses (log10)", rtol=1e-3, atol=1e-4)


def test_part5_the_hierarchical_model_trains_and_samples_as_torchs(words):
    """torch.manual_seed(42), then the layers' torch.randn, torch.randint batches, and
    torch.multinomial without a generator: all from the one global stream."""
    (ours, printed), (theirs, torch_printed) = run_both("part5_wavenet", words)
    assert printed[:3] == torch_printed[:3]  # the first examples of the shuffled training split
    assert ours["shapes"] == theirs["shapes"] == [(32, 8, 24), (32, 4, 48), (32, 4, 128), (32, 4, 128), (32, 4, 128),
                                                  (32, 2, 256), (32, 2, 128), (32, 2, 128), (32, 2, 128), (32, 256),
                                                  (32, 128), (32, 128), (32, 128), (32, 27)]
    close(ours["lossi"][:10], theirs["lossi"][:10], "the first 10 losses (log10)")
    close([ours["train"], ours["val"]], [theirs["train"], theirs["val"]], "train/val", rtol=1e-3)
    assert ours["names"] == theirs["names"]
