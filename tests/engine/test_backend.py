"""The backend seam: code that runs on both devices takes its array module from
backend.py, only backend.py touches cupy, devices are checked, and moving tensors and
models between devices and dtypes keeps them working."""
import ast
from pathlib import Path

import numpy as np
import pytest

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, backend, manual_seed, optim
from tinygrad_wave.models import build_model

PACKAGE = Path(backend.__file__).parent
# Host-only code, which never holds a GPU array: files, torch's CPU random draws (sent to
# the device afterwards), the teaching tools' statistics on host copies.
HOST_ONLY = {"serialization.py", "training.py", "random.py", "utils/data/dataloader.py",
             "teach/cmp.py", "teach/diagnostics.py", "teach/graph.py", "teach/plots.py", "teach/steps.py"}


def array_imports(path):
    """(library, alias) for each import of numpy, cupy or cupyx in a file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((a.name.split(".")[0], a.asname) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], None


def test_both_device_code_takes_its_array_module_from_the_backend():
    found = {path.relative_to(PACKAGE).as_posix(): {lib for lib, _ in array_imports(path)} & {"numpy", "cupy", "cupyx"}
             for path in PACKAGE.rglob("*.py") if path.name != "backend.py"}  # subpackages (ops, teach) too
    assert {name: libs for name, libs in found.items() if libs and name not in HOST_ONLY} == {}
    assert all(found[name] == {"numpy"} for name in HOST_ONLY), "a host-only module no longer needs numpy"
    assert all(alias == "np" for name in HOST_ONLY for lib, alias in array_imports(PACKAGE / name) if lib == "numpy")
    assert "numpy" in {lib for lib, _ in array_imports(PACKAGE / "backend.py")}


def test_cuda_without_cupy_or_gpu_says_what_is_missing(without_cupy):
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        Tensor([1.0, 2.0], device="cuda")
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        build_model(27, 8, 4, 8).to("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Tensor([1.0], device="tpu")
    with pytest.raises(ValueError, match="unknown device"):
        Tensor([1.0]).to("gpu")
    with pytest.raises(ValueError, match="unknown device"):
        build_model(27, 8, 4, 8).to("gpu")


def test_model_to_casts_parameters_and_buffers_in_place():
    manual_seed(0)
    model = build_model(27, 8, 4, 8)
    tensors = [t for _, t, _ in model.named_tensors()]
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.to(dtype="float64")
    assert [t for _, t, _ in model.named_tensors()] == tensors  # the same objects, which opt holds
    assert all(t.dtype == np.float64 for t in tensors)
    X = np.random.default_rng(0).integers(0, 27, (16, 8))
    loss = F.cross_entropy(model(X), X[:, 0])
    assert loss.dtype == np.float64
    before = model.layers[2].weight.numpy()
    loss.backward()
    opt.step()
    assert not np.array_equal(before, model.layers[2].weight.numpy())
    assert model.layers[3].running_mean.dtype == np.float64


def test_tensor_to_the_same_place_is_itself_and_to_a_dtype_a_copy():
    t = Tensor([1.0, 2.0])
    assert t.to("cpu") is t
    d = t.to(dtype="float64")
    assert d.dtype == np.float64 and t.dtype == np.float32


def test_tensor_to_reads_a_dtype_or_a_device_given_by_position_as_torch_does():
    """x.to(torch.float64) and x.to("cpu", torch.float64), as torch reads them; x.to("float64") too."""
    import torch
    import tinygrad_wave
    t = Tensor([1.0, 2.0], requires_grad=True)
    for ours, theirs in (((tinygrad_wave.float64,), (torch.float64,)),
                         (("cpu", tinygrad_wave.float64), ("cpu", torch.float64))):
        d, reference = t.to(*ours), torch.tensor([1.0, 2.0]).to(*theirs)
        assert str(d.dtype) == str(reference.dtype).removeprefix("torch.") == "float64" and d.device == "cpu"
    d = t.to("float64")
    assert d.dtype == np.float64 and d.device == "cpu"
    d.sum().backward()  # still in the graph
    assert t.grad.dtype == np.float32 and np.array_equal(t.grad.numpy(), [1.0, 1.0])
    assert t.to("cpu", None) is t


def test_training_steps_on_cuda_match_the_cpu(cuda_device):
    """Five SGD steps of a small model in float64 on both devices, same batches."""
    X = np.random.default_rng(0).integers(0, 27, (64, 8))
    Y = np.random.default_rng(1).integers(0, 27, 64)
    losses, weights = {}, {}
    for device in ("cpu", "cuda"):
        manual_seed(0)
        model = build_model(27, 8, 6, 16).to(device, "float64")
        assert all(t.device == device for _, t, _ in model.named_tensors())
        opt = optim.SGD(model.parameters(), lr=0.1)
        losses[device] = []
        for step in range(5):
            xb, yb = Tensor(X[step::5], device=device), Tensor(Y[step::5], device=device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[device].append(loss.item())
        weights[device] = model.state_dict()
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-10)
    for name in weights["cpu"]:
        np.testing.assert_allclose(weights["cuda"][name], weights["cpu"][name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_embedding_scatter_add_on_cuda_accumulates_repeats(cuda_device):
    W = Tensor(np.zeros((5, 3)), requires_grad=True, device="cuda")
    ix = Tensor(np.array([[1, 1, 4], [1, 0, 4]]), device="cuda")
    W[ix].backward(np.ones((2, 3, 3)))
    np.testing.assert_array_equal(W.grad.numpy()[:, 0], [1, 3, 0, 0, 2])


def test_embedding_rejects_indices_numpy_would_wrap():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="-1"):
        emb(np.array([0, -1]))
    with pytest.raises(IndexError, match="5"):
        emb(np.array([[5]]))
