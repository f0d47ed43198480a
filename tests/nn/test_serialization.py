"""torch.save / torch.load: what was saved comes back, nothing in the file can run code, and
a file from PyTorch's own torch.save is refused with one line that says what to do."""
import math

import numpy as np
import pytest
import torch

import tinygrad_wave as tw
from tinygrad_wave.models import build_model

from conftest import host


def test_a_nested_state_round_trips_with_its_types_and_order(tmp_path):
    state = {
        "weight": tw.randn(3, 4), "double": tw.randn(2, dtype=tw.float64), "ids": tw.tensor([[1, 2], [3, 4]]),
        "mask": tw.tensor([True, False]), "scalar": tw.tensor(2.5), "empty": tw.zeros(0, 3),
        "optimizer": {"state": {0: {"step": 3, "exp_avg": tw.ones(2)}, 1: {}}, "param_groups": [
            {"lr": 5e-4, "betas": (0.9, 0.99), "eps": 1e-8, "params": [0, 1], "amsgrad": False, "name": None}]},
        "numbers": [1, -2.5, math.inf, -math.inf, "names.txt", []], "array": np.arange(6.0).reshape(2, 3),
    }
    tw.save(state, tmp_path / "state.pt")
    loaded = tw.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    assert list(loaded) == list(state)
    assert list(loaded["optimizer"]["state"]) == [0, 1]  # int keys stay ints
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)  # a tuple stays a tuple
    assert loaded["numbers"] == [1, -2.5, math.inf, -math.inf, "names.txt", []]
    for name in ["weight", "double", "ids", "mask", "scalar", "empty"]:
        assert isinstance(loaded[name], tw.Tensor) and loaded[name].dtype == state[name].dtype
        np.testing.assert_array_equal(loaded[name].numpy(), state[name].numpy())
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["exp_avg"].numpy(), np.ones(2, np.float32))
    np.testing.assert_array_equal(loaded["array"], state["array"])
    tw.save([math.nan], tmp_path / "nan.pt")
    assert math.isnan(tw.load(tmp_path / "nan.pt")[0])


def test_the_file_holds_no_pickle(tmp_path):
    """Every member loads with NumPy's allow_pickle=False: no object arrays, nothing to unpickle."""
    tw.save({"w": tw.randn(2, 2), "meta": {"step": 1}}, tmp_path / "model.pt")
    with np.load(tmp_path / "model.pt", allow_pickle=False) as archive:
        for name in archive.files:
            assert archive[name].dtype != object
    assert (tmp_path / "model.pt").exists() and not (tmp_path / "model.pt.npz").exists()  # the name as given


def test_tensors_come_back_on_their_device_or_on_map_location(tmp_path, device):
    w = tw.randn(2, 3, device=device, requires_grad=True)
    tw.save({"w": w}, tmp_path / "w.pt")
    back = tw.load(tmp_path / "w.pt")["w"]
    assert back.device == w.device and back.requires_grad
    np.testing.assert_array_equal(host(back), host(w))
    assert tw.load(tmp_path / "w.pt", map_location="cpu")["w"].device == "cpu"


def test_makemores_checkpoint_pattern_gives_back_the_same_model(tmp_path):
    """`torch.save(model.state_dict(), out_path)`, then `model.load_state_dict(torch.load(out_path))`."""
    tw.manual_seed(1)
    model = build_model(vocab_size=27, block_size=8, n_embd=4, n_hidden=8)
    tw.save(model.state_dict(), tmp_path / "model.pt")
    tw.manual_seed(2)
    fresh = build_model(vocab_size=27, block_size=8, n_embd=4, n_hidden=8)
    fresh.load_state_dict(tw.load(tmp_path / "model.pt"))
    assert list(fresh.state_dict()) == list(model.state_dict())
    for (name, want), got in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(host(got), host(want), err_msg=name)


def test_sgd_state_round_trips_so_a_resumed_step_is_the_same(tmp_path):
    w = tw.tensor([1.0, -2.0], requires_grad=True)
    opt = tw.optim.SGD([w], lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    tw.save({"w": w.detach(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    saved = tw.load(tmp_path / "ckpt.pt")
    resumed = tw.tensor(saved["w"].numpy(), requires_grad=True)
    opt2 = tw.optim.SGD([resumed], lr=0.1, momentum=0.9)
    opt2.load_state_dict(saved["opt"])
    for p, o in ((w, opt), (resumed, opt2)):
        o.zero_grad()
        (p * p).sum().backward()
        o.step()
    np.testing.assert_array_equal(resumed.numpy(), w.numpy())


@pytest.mark.parametrize("zipped", [True, False], ids=["zip (torch's default)", "legacy pickle"])
def test_a_file_from_pytorch_is_refused_in_one_line(tmp_path, zipped):
    path = tmp_path / "torch_model.pt"
    torch.save({"weight": torch.randn(2, 2)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(ValueError, match="written by PyTorch's torch.save") as refused:
        tw.load(path)
    assert "\n" not in str(refused.value) and "tinygrad_wave.save" in str(refused.value)


def test_other_files_and_objects_are_refused(tmp_path):
    (tmp_path / "names.txt").write_text("emma\nolivia\n")
    with pytest.raises(ValueError, match="not a file tinygrad_wave.save wrote"):
        tw.load(tmp_path / "names.txt")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not one tinygrad_wave.save wrote"):
        tw.load(tmp_path / "other.npz")
    with pytest.raises(TypeError, match="not set"):
        tw.save({"ids": {1, 2}}, tmp_path / "set.pt")
    with pytest.raises(TypeError, match="device name"):
        tw.load(tmp_path / "other.npz", map_location={"cuda:0": "cpu"})
