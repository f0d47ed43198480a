"""utils.tensorboard.SummaryWriter writes real TensorBoard event files: the same calls made
with torch's SummaryWriter and with ours, read back with TensorBoard's own reader
(EventAccumulator), give the same scalars, histograms and text."""
import os

import numpy as np
import pytest
import torch.utils.tensorboard
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tinygrad_wave as tw
from tinygrad_wave.utils.tensorboard import SummaryWriter

from conftest import host

VALUES = np.random.default_rng(0).standard_normal(1000).astype(np.float32)


def log_a_run(writer, lib):
    """makemore.py's calls, and the rest of the writer's."""
    for step in range(3):
        writer.add_scalar("Loss/train", lib.tensor(2.0 - 0.25 * step), step)
        writer.add_scalar("Loss/test", 2.5 - 0.125 * step, step)
        writer.flush()
    writer.add_scalars("Loss", {"train": 1.5, "test": lib.tensor(1.75)}, 3)
    writer.add_histogram("weights", lib.tensor(VALUES), 3)
    writer.add_text("config", "--type transformer --n-layer 4", 0)
    writer.close()


def read(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_the_events_read_back_as_torchs(tmp_path):
    log_a_run(SummaryWriter(tmp_path / "ours"), tw)
    log_a_run(torch.utils.tensorboard.SummaryWriter(tmp_path / "torch"), torch)
    ours, theirs = read(tmp_path / "ours"), read(tmp_path / "torch")
    assert ours.Tags()["scalars"] == theirs.Tags()["scalars"] == ["Loss/train", "Loss/test"]
    for tag in ["Loss/train", "Loss/test"]:
        assert scalars(ours, tag) == scalars(theirs, tag)
    assert scalars(ours, "Loss/train") == [(0, 2.0), (1, 1.75), (2, 1.5)]
    (ours_h,), (theirs_h,) = ours.Histograms("weights"), theirs.Histograms("weights")
    assert ours_h.step == theirs_h.step == 3
    for field in ["min", "max", "num", "sum", "sum_squares", "bucket_limit", "bucket"]:
        assert getattr(ours_h.histogram_value, field) == pytest.approx(getattr(theirs_h.histogram_value, field),
                                                                      rel=1e-6), field
    text = [e.tensor_proto.string_val for e in ours.Tensors("config/text_summary")]
    assert text == [e.tensor_proto.string_val for e in theirs.Tensors("config/text_summary")]
    assert text == [[b"--type transformer --n-layer 4"]]


def test_add_scalars_writes_one_run_per_tag_as_torch(tmp_path):
    log_a_run(SummaryWriter(tmp_path / "ours"), tw)
    log_a_run(torch.utils.tensorboard.SummaryWriter(tmp_path / "torch"), torch)
    runs = [sorted(entry.name for entry in os.scandir(tmp_path / lib) if entry.is_dir()) for lib in ["ours", "torch"]]
    assert runs[0] == runs[1] == ["Loss_test", "Loss_train"]
    for run in ["Loss_train", "Loss_test"]:
        ours, theirs = read(tmp_path / "ours" / run), read(tmp_path / "torch" / run)
        assert scalars(ours, "Loss") == scalars(theirs, "Loss") == [(3, {"Loss_train": 1.5, "Loss_test": 1.75}[run])]


def test_tensors_on_either_device_are_logged(tmp_path, device):
    w = tw.randn(50, device=device)
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("mean", w.mean(), 7)
        writer.add_histogram("w", w, 7)
    events = read(tmp_path)
    assert scalars(events, "mean") == [(7, pytest.approx(float(host(w).mean()), rel=1e-6))]
    assert events.Histograms("w")[0].histogram_value.num == 50
    assert writer.get_logdir() == tmp_path  # the folder as given, as torch keeps it
