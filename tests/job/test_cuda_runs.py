"""device="cuda" beyond the ops: scripts/train.py --device cuda (replayed and eager steps,
--diagnostics, a checkpoint resumed and sampled on the CPU), the models of the README and
the teaching tools on a CUDA model. Against the CuPy stand-in on every machine (its
arithmetic is NumPy's, so the CUDA run must give the CPU run's losses), on a GPU too."""
import sys
from pathlib import Path

import numpy as np
import pytest
from test_train_diagnostics import log_of, small_run  # the same tiny run, here on either device

import tinygrad_wave.functional as F
from tinygrad_wave import Tensor, manual_seed, no_grad, optim, teach
from tinygrad_wave.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import sample  # noqa: E402
import train  # noqa: E402

from tinygrad_wave.training import Run  # noqa: E402


# The CPU's embedding backward is a one-hot matmul, CUDA's a scatter-add: the same sums
# in another order, so float32 losses agree to float32's rounding, not bit for bit.
FLOAT32 = dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags", [[], ["--no-jit"], ["--diagnostics"]], ids=["replayed", "eager", "diagnostics"])
def test_train_on_cuda_gives_the_cpu_losses(words_file, tmp_path, cuda_device, flags):
    assert train.main(small_run(words_file, tmp_path / "cpu", *flags)) == 0
    assert train.main(small_run(words_file, tmp_path / "cuda", "--device", "cuda", *flags)) == 0
    cpu, cuda = log_of(tmp_path / "cpu"), log_of(tmp_path / "cuda")
    assert cuda["config"]["device"] == "cuda"
    np.testing.assert_allclose(cuda["losses"], cpu["losses"], **FLOAT32)
    for split in cpu["final"]:
        np.testing.assert_allclose(cuda["final"][split], cpu["final"][split], **FLOAT32)
    if "--diagnostics" in flags:
        assert (tmp_path / "cuda" / "activations.png").stat().st_size > 1000
        assert [r["layer"] for r in cuda["diagnostics"]["activations"]] == [r["layer"] for r in cpu["diagnostics"]["activations"]]


def test_a_cuda_checkpoint_resumes_and_samples_on_the_cpu(words_file, tmp_path, cuda_device, capsys):
    out = tmp_path / "run"
    assert train.main(small_run(words_file, out, "--device", "cuda")) == 0
    with np.load(out / "checkpoint.npz", allow_pickle=False) as f:  # host arrays, loadable anywhere
        assert f["model.layers.0.weight"].dtype == np.float32
    assert train.main(["--out", str(out), "--resume", "--steps", "50", "--device", "cpu", "--quiet"]) == 0
    assert log_of(out)["step"] == 50 and log_of(out)["config"]["device"] == "cpu"
    assert train.main(["--out", str(out), "--resume", "--steps", "60", "--device", "cuda", "--quiet"]) == 0
    assert Run.load(out / "checkpoint.npz").step == 60
    capsys.readouterr()
    for device in ("cpu", "cuda"):
        assert sample.main(["--checkpoint", str(out / "checkpoint.npz"), "--num", "4", "--device", device]) == 0
    on_cpu, on_cuda = np.split(np.array(capsys.readouterr().out.splitlines()), 2)
    assert list(on_cpu) == list(on_cuda)


def test_teaching_tools_read_a_cuda_model(cuda_device):
    """Each tool copies what it shows to the host; the same model on the CPU shows the same."""
    pyplot = pytest.importorskip("matplotlib.pyplot")
    shown = {}
    for device in ("cpu", "cuda"):
        manual_seed(0)
        model = build_model(27, 8, 4, 16).to(device)
        x = Tensor(np.random.default_rng(0).integers(0, 27, (32, 8)), device=device)
        y = Tensor(np.random.default_rng(1).integers(0, 27, 32), device=device)
        table = str(teach.summary(model, x))
        loss = F.cross_entropy(model(x), y)
        teach.retain_layer_grads(model)
        steps = [str(step) for step in teach.backward_steps(loss)]
        stats = [str(t) for t in (teach.activation_stats(model), teach.gradient_stats(model), teach.weight_stats(model))]
        ratios = teach.update_ratios(model, lr=0.1)
        embedding = model.layers[0].weight
        check = teach.cmp("C", embedding.grad.numpy(), embedding)
        for plot in (teach.plot_activations, teach.plot_gradients, teach.plot_weights):
            plot(model)
        teach.plot_update_ratios([ratios])
        pyplot.close("all")
        with no_grad():
            logits = model(x).numpy()
        shown[device] = table, steps, stats, check.exact, logits
        optim.SGD(model.parameters(), lr=0.1).step()
    cpu, cuda = shown["cpu"], shown["cuda"]
    assert cuda[0] == cpu[0] and len(cuda[1]) == len(cpu[1]) and cuda[3]
    np.testing.assert_allclose(cuda[4], cpu[4], **FLOAT32)
