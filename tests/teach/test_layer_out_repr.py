"""What a learner looks at: each layer's last output (layer.out, as in makemore
parts 3 and 5) and print(model) in torch's style."""
import numpy as np
import torch

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, manual_seed
from tinygrad_wave.models import PRESETS, build_model, count_parameters

# what makemore part 5 prints for its 76k hierarchical model at batch 32:
#     for layer in model.layers: print(layer.__class__.__name__, ':', tuple(layer.out.shape))
PART_5_SHAPES = """\
Embedding : (32, 8, 24)
FlattenConsecutive : (32, 4, 48)
Linear : (32, 4, 128)
BatchNorm1d : (32, 4, 128)
Tanh : (32, 4, 128)
FlattenConsecutive : (32, 2, 256)
Linear : (32, 2, 128)
BatchNorm1d : (32, 2, 128)
Tanh : (32, 2, 128)
FlattenConsecutive : (32, 256)
Linear : (32, 128)
BatchNorm1d : (32, 128)
Tanh : (32, 128)
Linear : (32, 27)
"""


def hier76k_forward():
    manual_seed(42)
    model = build_model(27, **PRESETS["hier76k"])
    Xb = np.random.default_rng(0).integers(0, 27, (32, 8))
    return model, Xb, model(Tensor(Xb))


def test_layer_out_has_part_5s_shapes(capsys):
    model, _, logits = hier76k_forward()
    for layer in model.layers:
        print(layer.__class__.__name__, ':', tuple(layer.out.shape))
    assert capsys.readouterr().out == PART_5_SHAPES
    assert model.layers[-1].out is logits and model.out is logits


def test_layer_out_is_each_layers_output_and_not_state():
    model, Xb, _ = hier76k_forward()
    np.testing.assert_array_equal(model.layers[0].out.numpy(), model.layers[0].weight.numpy()[Xb])
    for previous, layer in zip(model.layers, model.layers[1:]):  # each .out is made from the one before
        np.testing.assert_array_equal(layer.out.numpy(), layer.forward(previous.out).numpy())
    assert count_parameters(model) == 76579  # .out is not a parameter
    assert not any(name.endswith("out") for name in model.state_dict())


def test_retain_grad_on_every_layer_out_as_part_3_does():
    """`for layer in layers: layer.out.retain_grad()` then backward: every output has a gradient."""
    model, Xb, logits = hier76k_forward()
    for layer in model.layers:
        layer.out.retain_grad()
    loss = F.cross_entropy(logits, np.random.default_rng(1).integers(0, 27, 32))
    loss.backward()
    for layer in model.layers:
        grad = layer.out.grad
        assert grad is not None and grad.shape == layer.out.shape, type(layer).__name__
    tanh_grads = [layer.out.grad.numpy() for layer in model.layers if isinstance(layer, nn.Tanh)]
    assert all(np.abs(g).max() > 0 for g in tanh_grads)
    # the last Tanh feeds the output Linear: its gradient is d logits @ W^T
    last = model.layers[-1]
    np.testing.assert_allclose(model.layers[-2].out.grad, logits.grad @ last.weight.numpy().T, rtol=1e-5, atol=1e-7)


def test_print_model_is_torch_style(capsys):
    manual_seed(0)
    print(build_model(27, **PRESETS["hier76k"]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Sequential(" and lines[-1] == ")"
    assert lines[1] == "  (0): Embedding(27, 24)"
    assert lines[2] == "  (1): FlattenConsecutive(2)"
    assert lines[3] == "  (2): Linear(in_features=48, out_features=128, bias=False)"
    assert lines[4] == "  (3): BatchNorm1d(128, eps=1e-05, momentum=0.1)"
    assert lines[5] == "  (4): Tanh()"
    assert lines[-2] == "  (13): Linear(in_features=128, out_features=27, bias=True)"
    assert len(lines) == 16


def test_repr_matches_torchs_for_the_layers_torch_has():
    pairs = [(nn.Embedding(27, 24), torch.nn.Embedding(27, 24)),
             (nn.Linear(48, 128, bias=False), torch.nn.Linear(48, 128, bias=False)),
             (nn.Linear(3, 5), torch.nn.Linear(3, 5)),
             (nn.Tanh(), torch.nn.Tanh())]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    nested = nn.Sequential(nn.Embedding(27, 24), nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh()))
    torch_nested = torch.nn.Sequential(torch.nn.Embedding(27, 24),
                                       torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Tanh()))
    assert repr(nested) == repr(torch_nested)
    # BatchNorm1d and Dropout show the arguments they take (torch's add ones ours lacks)
    assert repr(nn.BatchNorm1d(128)) == "BatchNorm1d(128, eps=1e-05, momentum=0.1)"
    assert repr(torch.nn.BatchNorm1d(128)).startswith("BatchNorm1d(128, eps=1e-05, momentum=0.1")
