"""karpathy/makemore's makemore.py on tinygrad_wave: its six models and its training program,
in its style (makemore_code.py), run once on PyTorch and once here with only the imports
switched. Each must print torch's parameter count, split the names as torch does, see torch's
batches, keep its losses within 1e-3 of torch's, and sample torch's names -- after training,
and again from the saved file (--sample-only --top-k 5) and after --resume.
"""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import makemore_code
import tinygrad_wave
import tinygrad_wave.nn
import tinygrad_wave.utils.data
from tinygrad_wave import jit
from tinygrad_wave.data import DEFAULT_PATH, load_words

LIBRARIES = {"torch": (torch, torch.nn, torch.nn.functional, torch.utils.data),
             "tinygrad_wave": (tinygrad_wave, tinygrad_wave.nn, tinygrad_wave.nn.functional, tinygrad_wave.utils.data)}
KINDS = ["bigram", "mlp", "rnn", "gru", "bow", "transformer"]
NAMES = load_words(DEFAULT_PATH)[:2000]


def in_both(program, tmp_path, *args, **kwargs):
    """program(torch, nn, F, data, ...) in each library, each with a work dir of its own."""
    results = {}
    for name, modules in LIBRARIES.items():
        (tmp_path / name).mkdir(exist_ok=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "'pin_memory' argument")  # torch's, on a machine without a GPU
            results[name] = program(*modules, NAMES, *args, work_dir=tmp_path / name, **kwargs)
    return results["tinygrad_wave"], results["torch"]


def assert_same_run(ours, theirs):
    assert ours["params"] == theirs["params"]
    assert ours["split"] == theirs["split"]
    assert ours["batches"] == theirs["batches"]
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours["evals"], theirs["evals"], rtol=0, atol=1e-3)
    assert ours["samples"] == theirs["samples"]


@pytest.mark.parametrize("kind", KINDS)
def test_makemore_trains_each_model_as_torch(kind, tmp_path):
    ours, theirs = in_both(makemore_code.makemore, tmp_path, kind)
    assert_same_run(ours, theirs)
    assert ours.get("transformer_params") == theirs.get("transformer_params")

    # --sample-only --top-k 5: the best saved state, loaded into a fresh model
    ours_names, theirs_names = in_both(makemore_code.sample_only, tmp_path, kind)
    assert ours_names == theirs_names and len(ours_names) == 10

    # --resume: training carries on from the saved state (torch's file for torch, ours for us)
    ours, theirs = in_both(makemore_code.makemore, tmp_path, kind, steps=12, resume=True)
    assert_same_run(ours, theirs)


def captured_training(kind):
    """makemore.py's model of `kind` in tinygrad_wave, with its training step
    (model(X, Y), zero_grad, backward, AdamW) and its training split."""
    tinygrad_wave.manual_seed(3407)
    train, _ = makemore_code.split_names(tinygrad_wave, tinygrad_wave.utils.data, NAMES)
    cfg = SimpleNamespace(vocab_size=train.vocab_size(), block_size=train.output_length(), **makemore_code.TINY)
    model = makemore_code.model_classes(*LIBRARIES["tinygrad_wave"][:3])[kind](cfg)
    optimizer = tinygrad_wave.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99))

    def step(X, Y):
        loss = model(X, Y)[1]
        model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss
    return model, step, makemore_code.EndlessBatches(tinygrad_wave.utils.data, train, batch_size=8)


@pytest.mark.parametrize("kind", KINDS)
def test_makemore_step_captured_by_the_jit_replays_bit_for_bit(kind):
    """The step as makemore.py writes it, with positions (torch.arange) and flat targets
    (targets.view(-1)) made inside forward, and the MLP's start token written into its rolled
    ids (`idx[:, 0] = ...`): replayed, it gives eager mode's losses and weights."""
    eager_model, eager_step, batches = captured_training(kind)
    model, step, _ = captured_training(kind)
    step = jit.capture(step)
    for _ in range(8):
        X, Y = batches.next()
        assert eager_step(X, Y).numpy().tobytes() == step(X, Y).numpy().tobytes()
    assert step.replayed == 6
    for (name, a), (_, b) in zip(eager_model.named_parameters(), model.named_parameters()):
        assert a.numpy().tobytes() == b.numpy().tobytes(), name

