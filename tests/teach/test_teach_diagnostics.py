"""teach.summary and part 3's diagnostics, against numbers computed independently with NumPy."""
import json
import re

import numpy as np
import pytest

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import manual_seed, no_grad, optim, teach
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
    rows = text.splitlines()[2:2 + len(getattr(model, "layers", [model]))]  # a WaveNet is one row
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
    training_out = model(batch(8)[0])
    before = {name: t.numpy().copy() for name, t, _ in model.named_tensors()}
    teach.summary(model, batch()[0])
    assert model.layers[-1].out is training_out  # the diagnostics still read the training step
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


# --- part 3's statistics ------------------------------------------------------------------

def train_step(model, lr=0.1, seed=0):
    """One SGD step as part 3 takes it, every layer's output keeping its gradient."""
    Xb, Yb = batch(seed=seed)
    loss = F.cross_entropy(model(Xb), Yb)
    teach.retain_layer_grads(model)
    model.zero_grad()
    loss.backward()
    optim.SGD(model.parameters(), lr).step()
    return loss


def tanh_layers(model):
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, nn.Tanh)]


def test_activation_stats_are_the_tanh_outputs_mean_std_and_saturation():
    model = hier()
    train_step(model)
    rows = teach.activation_stats(model)
    assert [(r.layer, r.kind) for r in rows] == [(4, "Tanh"), (8, "Tanh"), (12, "Tanh")]
    for row, (_, layer) in zip(rows, tanh_layers(model)):
        t = layer.out.numpy().astype(np.float64)
        assert row.mean == pytest.approx(t.mean()) and row.std == pytest.approx(t.std())
        assert row.saturated == pytest.approx(np.mean(np.abs(t) > 0.97))
    lines = str(rows).splitlines()
    assert lines[0] == (f"layer 4 (Tanh):  mean {rows[0].mean:+.2f}, std {rows[0].std:.2f}, "
                        f"saturated: {rows[0].saturated:.2%}")  # padded to line up with layer 12's
    assert lines[2].startswith("layer 12 (Tanh): mean")
    assert str(rows[0]).startswith("layer 4 (Tanh): mean")  # a row alone is not padded


def test_a_badly_scaled_network_shows_saturation_the_fixed_one_does_not():
    manual_seed(0)
    no_norm = nn.Sequential([nn.Embedding(VOCAB, 10), nn.FlattenConsecutive(8), nn.Linear(80, 64), nn.Tanh(),
                             nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, VOCAB)])
    with no_grad():
        for layer in no_norm.layers[2:-1:2]:
            layer.weight *= 5.0  # the weights of part 3's start: far too large for tanh
    train_step(no_norm)
    assert min(r.saturated for r in teach.activation_stats(no_norm)) > 0.5
    fixed = hier()
    train_step(fixed)
    assert max(r.saturated for r in teach.activation_stats(fixed)) < 0.1


def test_gradient_stats_are_those_of_the_gradient_reaching_each_tanh():
    model = hier()
    train_step(model)
    rows = teach.gradient_stats(model)
    assert [r.layer for r in rows] == [4, 8, 12]
    for row, (_, layer) in zip(rows, tanh_layers(model)):
        g = layer.out.grad.numpy().astype(np.float64)
        assert row.mean == pytest.approx(g.mean(), abs=1e-12) and row.std == pytest.approx(g.std())


def test_gradient_stats_without_retained_gradients_says_what_to_call():
    model = hier()
    Xb, Yb = batch()
    F.cross_entropy(model(Xb), Yb).backward()
    with pytest.raises(RuntimeError, match=r"retain_layer_grads\(model\)"):
        teach.gradient_stats(model)


def test_stats_before_any_forward_say_to_run_one():
    with pytest.raises(RuntimeError, match="run a forward pass first"):
        teach.activation_stats(hier())


def test_weight_stats_cover_each_2d_parameter():
    model = hier()
    train_step(model)
    rows = teach.weight_stats(model)
    weights = [(n, p) for n, p, is_buffer in model.named_tensors() if p.ndim == 2 and not is_buffer]
    assert [r.name for r in rows] == [n for n, _ in weights] == [
        "layers.0.weight", "layers.2.weight", "layers.6.weight", "layers.10.weight", "layers.13.weight"]
    for row, (_, p) in zip(rows, weights):
        g, w = p.grad.numpy().astype(np.float64), p.numpy().astype(np.float64)
        assert row.shape == p.shape
        assert row.mean == pytest.approx(g.mean(), abs=1e-12) and row.std == pytest.approx(g.std())
        assert row.grad_to_data == pytest.approx(g.std() / w.std())
    assert json.loads(json.dumps(rows.records()))[0]["name"] == "layers.0.weight"
    lines = str(rows).splitlines()  # the columns line up though layers.10.weight is the longest name
    assert len({line.index("| mean") for line in lines}) == 1, lines


def test_update_ratios_are_log10_of_the_step_over_the_data():
    model = hier()
    train_step(model, lr=0.1)
    ratios = teach.update_ratios(model, lr=0.1)
    assert list(ratios) == [r.name for r in teach.weight_stats(model)]
    for name, p, _ in model.named_tensors():
        if name in ratios:
            expected = np.log10((0.1 * p.grad.numpy().astype(np.float64)).std() / p.numpy().astype(np.float64).std())
            assert ratios[name] == pytest.approx(expected)
    assert -5 < ratios["layers.2.weight"] < -1  # a healthy network: near the 1e-3 guide


# --- plots ----------------------------------------------------------------------------------

@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def test_each_plot_draws_one_density_per_layer(pyplot):
    model = hier()
    history = []
    for _ in range(3):
        train_step(model)
        history.append(teach.update_ratios(model, 0.1))
    for plot, count in ((teach.plot_activations, 3), (teach.plot_gradients, 3), (teach.plot_weights, 5)):
        ax = plot(model)
        assert len(ax.get_lines()) == count, plot.__name__
        for line in ax.get_lines():  # a density: it integrates to 1
            x, y = line.get_data()
            assert np.sum(y) * (x[1] - x[0]) == pytest.approx(1.0), plot.__name__
    ax = teach.plot_update_ratios(history)
    lines = ax.get_lines()
    assert len(lines) == 5 + 1 and lines[-1].get_ydata()[0] == -3  # five weights and the guide
    np.testing.assert_allclose(lines[1].get_ydata(), [h["layers.2.weight"] for h in history])


def test_every_figure_is_labelled_and_its_legend_is_beside_the_curves_not_over_them(pyplot):
    model = hier()
    train_step(model)
    ratios = [teach.update_ratios(model, 0.1)]
    for plot in (teach.plot_activations, teach.plot_gradients, teach.plot_weights,
                 lambda model: teach.plot_update_ratios(ratios)):
        ax = plot(model)
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        ax.figure.canvas.draw()
        renderer = ax.figure.canvas.get_renderer()
        legend, plot_area = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
        assert legend.x0 >= plot_area.x1, "the legend covers part of the plot"
        figure = ax.figure.get_window_extent(renderer)
        assert legend.x1 <= figure.x1 + 1, "the legend is cut off at the figure's edge"
        assert ax.figure.dpi >= 100
        pyplot.close(ax.figure)


def test_plots_draw_on_a_given_axes(pyplot):
    model = hier()
    train_step(model)
    fig, axes = pyplot.subplots(1, 2)
    assert teach.plot_activations(model, ax=axes[1]) is axes[1]
    assert len(axes[0].get_lines()) == 0


def test_a_weight_of_zeros_has_an_infinite_grad_to_data_ratio_not_an_error():
    model = hier(n_embd=4, n_hidden=8)
    with no_grad():
        model.layers[-1].weight *= 0.0
    train_step(model, lr=0.0)  # lr 0 keeps it at zero
    last = teach.weight_stats(model)[-1]
    assert last.name == "layers.13.weight" and last.grad_to_data == float("inf") and last.std > 0
    assert teach.update_ratios(model, lr=0.1)["layers.13.weight"] == float("inf")  # any step is infinitely big
    assert teach.update_ratios(model, lr=0.0)["layers.2.weight"] == float("-inf")  # no step at all
