"""teach.summary and part 3's diagnostics, against numbers computed independently with NumPy."""
import re

import numpy as np
import pytest

import tinygrad_wave.nn as nn
from tinygrad_wave import manual_seed, teach
from tinygrad_wave.models import PRESETS, build_model, count_parameters

VOCAB = 27


def hier(n_embd=24, n_hidden=128):
    manual_seed(0)
    return build_model(vocab_size=VOCAB, block_size=8, n_embd=n_embd, n_hidden=n_hidden)


def batch(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, VOCAB, (n, 8)), rng.integers(0, VOCAB, n)


# --- summary ------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", list(PRESETS))
def test_summary_totals_match_count_parameters(preset):
    manual_seed(0)
    model = build_model(vocab_size=VOCAB, **PRESETS[preset])
    Xb = np.zeros((4, PRESETS[preset]["block_size"]), dtype=np.int64)
    text = teach.summary(model, Xb)
    assert f"Total params: {count_parameters(model):,}\n" in text
    rows = text.splitlines()[2:2 + len(model.layers)]
    assert sum(int(row.split()[-1].replace(",", "")) for row in rows) == count_parameters(model)
    assert f"Buffers (batch-norm running statistics, not trained): {sum(b.numel() for b in model.buffers()):,}" in text


def test_summary_rows_give_the_part_5_shapes():
    text = teach.summary(hier(), batch()[0])
    rows = text.splitlines()[2:16]
    shapes = [re.search(r"\([\d, ]+\)", row).group() for row in rows]
    assert shapes == ["(32, 8, 24)", "(32, 4, 48)", "(32, 4, 128)", "(32, 4, 128)", "(32, 4, 128)",
                      "(32, 2, 256)", "(32, 2, 128)", "(32, 2, 128)", "(32, 2, 128)",
                      "(32, 256)", "(32, 128)", "(32, 128)", "(32, 128)", "(32, 27)"]
    assert rows[0].split() == ["0", "Embedding", "(32,", "8,", "24)", "648"] and "6,144" in text and "3,483" in text  # 48*128, 128*27 + 27


def test_summary_changes_nothing_in_the_model():
    model = hier()
    model.layers[3].eval()  # a mixed state is restored as it was, layer by layer
    before = {name: t.numpy().copy() for name, t, _ in model.named_tensors()}
    teach.summary(model, batch()[0])
    assert [m.training for _, m in model.named_modules()] == [m is not model.layers[3] for _, m in model.named_modules()]
    for name, t, _ in model.named_tensors():
        np.testing.assert_array_equal(t.numpy(), before[name], err_msg=name)  # running stats too
        assert t.grad is None


def test_summary_opens_nested_sequentials():
    manual_seed(0)
    model = nn.Sequential([nn.Embedding(VOCAB, 4), nn.FlattenConsecutive(8),
                           nn.Sequential([nn.Linear(32, 10), nn.Tanh()]), nn.Linear(10, VOCAB)])
    text = teach.summary(model, batch(5)[0])
    assert "2.0  Linear" in text and "2.1  Tanh" in text and "(5, 10)" in text
    assert f"Total params: {count_parameters(model):,}" in text
