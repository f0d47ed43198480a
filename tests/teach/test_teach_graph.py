"""teach.draw_dot: the DOT text of known graphs (never skipped), and rendering
with Graphviz's `dot` (skipped where it is not installed)."""
import re
import shutil

import numpy as np
import pytest

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, manual_seed, teach
from tinygrad_wave.models import build_model
from tinygrad_wave.teach import graph

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def labels(dot):
    """The label of every node in the DOT text, and the number of edges."""
    return re.findall(r'label="\{(.*?)\}"', dot.source), dot.source.count("->")


def small_expression():
    a = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 0.5]), requires_grad=True)
    out = (a * b + 1.0).tanh().sum()
    return a, b, out


def test_one_box_per_op_and_per_leaf_with_names_shapes_and_data():
    """Intermediates named as a learner names them (lesson 2) show their data; one the code
    dropped (the Tanh's output here) was freed, as in torch, and shows its shape alone."""
    a = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 0.5]), requires_grad=True)
    e = a * b
    d = e + 1.0
    out = d.tanh().sum()
    nodes, edges = labels(teach.draw_dot(out, names={a: "a", b: "b", e: "e", d: "d"}))
    assert nodes == [
        f"Sum | shape () | data {np.tanh([4.0, 0.0]).sum():.4g}",
        "Tanh | shape (2,)",
        "d = Add | shape (2,) | data [4 0]",
        "shape () | data 1",  # the constant 1.0
        "e = Mul | shape (2,) | data [3 -1]",
        "b | shape (2,) | data [3 0.5]",
        "a | shape (2,) | data [1 -2]",
    ]
    assert edges == 6  # a, b -> Mul; Mul, 1 -> Add; Add -> Tanh; Tanh -> Sum


def test_a_tensor_used_twice_has_one_box_and_two_arrows():
    x = Tensor(np.array([2.0]), requires_grad=True)
    nodes, edges = labels(teach.draw_dot(x * x, names={x: "x"}))
    assert nodes == ["Mul | shape (1,) | data 4", "x | shape (1,) | data 2"]
    assert edges == 2


def test_a_model_labels_its_parameters_and_shows_statistics_of_big_tensors():
    manual_seed(0)
    model = build_model(vocab_size=27, block_size=8, n_embd=4, n_hidden=6)
    Xb = np.random.default_rng(0).integers(0, 27, (5, 8))
    loss = F.cross_entropy(model(Xb), np.random.default_rng(1).integers(0, 27, 5))
    nodes, edges = labels(teach.draw_dot(loss, names=model))
    titles = [n.split(" | ")[0] for n in nodes]
    assert titles[0] == "CrossEntropy"
    parameter_names = {name for name, p, is_buffer in model.named_tensors() if not is_buffer}
    assert parameter_names <= set(titles)  # every parameter, by its dotted name
    assert titles.count("MatMul") == 4 and titles.count("BatchNorm") == 3 and titles.count("Tanh") == 3
    w = model.layers[-1].weight.numpy().astype(np.float64)
    assert f"layers.13.weight | shape (6, 27) | data mean {w.mean():.3g} std {w.std():.3g}" in nodes
    assert edges == len(nodes) - 1  # a tree: every box but the loss feeds exactly one op


def test_after_backward_with_retain_graph_leaves_and_retained_intermediates_show_gradients():
    a = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 0.5]), requires_grad=True)
    prod = a * b
    prod.retain_grad()
    hidden = (prod + 1.0).tanh()  # not retained: no gradient shown
    out = hidden.sum()
    out.backward(retain_graph=True)
    nodes, _ = labels(teach.draw_dot(out, names={a: "a", b: "b", prod: "prod"}))
    by_title = {n.split(" | ")[0]: n for n in nodes}
    dprod = 1 - np.tanh([4.0, 0.0]) ** 2
    assert by_title["a"].endswith(f"grad [{dprod[0] * 3:.4g} {dprod[1] * 0.5:.4g}]")
    assert by_title["b"].endswith(f"grad [{dprod[0] * 1:.4g} {dprod[1] * -2:.4g}]")
    assert by_title["prod = Mul"].endswith(f"grad [{dprod[0]:.4g} {dprod[1]:.4g}]")
    assert "grad" not in by_title["Tanh"] and "grad" not in by_title["Sum"]


def test_a_freed_graph_cannot_be_drawn():
    _, _, out = small_expression()
    out.backward()
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        teach.draw_dot(out)


def test_rendering_without_dot_says_how_to_install_it(monkeypatch, tmp_path):
    _, _, out = small_expression()
    dot = teach.draw_dot(out)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` to find
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz"):
        dot.pipe(format="svg")
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz"):
        dot._repr_mimebundle_()  # what Jupyter calls to show it inline
    assert dot.source.startswith("digraph")  # the text still works


def test_without_the_graphviz_package_the_error_says_pip_install(monkeypatch):
    _, _, out = small_expression()
    monkeypatch.setitem(__import__("sys").modules, "graphviz", None)  # import graphviz now fails
    graph._digraph_class.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install graphviz"):
            teach.draw_dot(out)
    finally:
        monkeypatch.undo()
        graph._digraph_class.cache_clear()


@needs_dot
def test_renders_to_svg_with_dot(tmp_path):
    a, b, out = small_expression()
    dot = teach.draw_dot(out, names={a: "a", b: "b"})
    svg = dot.pipe(format="svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "Tanh" in svg
    path = dot.render(tmp_path / "graph", format="png")
    assert (tmp_path / "graph.png").stat().st_size > 0 and path.endswith(".png")


@needs_dot
def test_the_part_5_models_graph_fits_a_page_drawn_top_to_bottom():
    """Lesson 2's graph: the ops stay in one column (their data-path edges are heavy) and the
    parameters join from the side, so it is a few boxes wide, not a diagonal across the page."""
    manual_seed(42)
    model = build_model(vocab_size=27, block_size=8, n_embd=24, n_hidden=128)
    rng = np.random.default_rng(0)
    loss = F.cross_entropy(model(rng.integers(0, 27, (4, 8))), rng.integers(0, 27, 4))
    loss.backward(retain_graph=True)  # with gradients: the widest boxes
    dot = teach.draw_dot(loss, names=model, rankdir="TB")
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', dot.pipe(format="svg").decode()).group(1))
    assert width_pt * 96 / 72 < 1000, f"{width_pt} pt is wider than a 1,280 px page's text column"
    assert re.search(r"-> \d+ \[weight=10\]", dot.source)
