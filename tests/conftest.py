"""Shared fixtures: which device and dtype a test runs on, and the comparison
with PyTorch that every *_torch.py test makes.

Every gradient test follows one recipe, written once here (TorchComparison):

  1. build the same inputs in tinygrad_wave (on `device`) and in torch (CPU),
  2. run the forward pass in both and compare the outputs,
  3. push the SAME random upstream gradient g = dL/d out back through both.
     Random, never ones: with g = 1 everywhere a gradient that is transposed,
     summed over the wrong axis or taken from the wrong output element can
     still come out right, because every element of g looks the same,
  4. compare the gradient of every input (and parameter).

Results on a GPU are copied to the host with .numpy() and compared there
with torch, which always runs on the CPU.
"""
import random
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

# the helpers the tests share (the CuPy stand-in, the lectures' code) live in tests/support
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
import cupy_standin  # noqa: E402
from tinygrad_wave import Tensor, backend


def _cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return False


CUDA_AVAILABLE = _cuda_available()

# float64 agrees with torch to rounding; float32 to its ~7 significant digits
TOLERANCE = {
    np.float64: dict(rtol=1e-10, atol=1e-10),
    np.float32: dict(rtol=1e-5, atol=1e-5),
}


# --- fixtures ---------------------------------------------------------------------------

@contextmanager
def cupy_as(module):
    """`import cupy` gives `module` inside the block (None: CuPy is not installed), and the
    backend loads it afresh, through the checks _load_cupy makes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "cupy", module)
        patch.setattr(backend, "_cupy", None)
        yield


# "cuda" twice: against the stand-in everywhere, and on a GPU where there is one
CUDA_PARAMS = [pytest.param("cuda-standin", marks=pytest.mark.cuda_standin), pytest.param("cuda", marks=pytest.mark.cuda)]


@contextmanager
def on(param):
    """The device string for a fixture's param, with the stand-in installed for "cuda-standin"."""
    if param == "cuda-standin":
        with cupy_as(cupy_standin):
            yield "cuda"
        return
    if param == "cuda" and not CUDA_AVAILABLE:
        pytest.skip("device='cuda' needs CuPy and a CUDA GPU")
    yield param


@pytest.fixture(scope="session", params=["cpu", *CUDA_PARAMS])
def device(request):
    """Every test that asks for `device` runs on the CPU, on "cuda" against the CuPy
    stand-in (tests/support/cupy_standin.py: CuPy's host/device boundaries, NumPy's arithmetic),
    and, where there is a GPU, on it too."""
    with on(request.param) as name:
        yield name


@pytest.fixture(params=CUDA_PARAMS)
def cuda_device(request):
    """For a test that compares "cuda" with "cpu" itself. (Per test, not per session, so
    that its stand-in comes and goes inside the one `device` may have installed.)"""
    with on(request.param) as name:
        yield name


@pytest.fixture
def without_cupy():
    """device="cuda" as on a machine without CuPy, whatever this one has."""
    with cupy_as(None):
        yield


@pytest.fixture(scope="session")
def has_cuda():
    return CUDA_AVAILABLE


@pytest.fixture(scope="session", params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed: every test sees the same numbers on every run."""
    return np.random.default_rng(1234)


@pytest.fixture
def check(device, dtype, rng):
    """A TorchComparison for this test's device and dtype (so a test that takes
    `check` runs once per device and per dtype)."""
    return TorchComparison(device, dtype, rng)


# --- helpers ------------------------------------------------------------------------------

def host(x):
    """A NumPy array from a tinygrad_wave Tensor, a torch tensor, or a raw numpy/cupy array."""
    if x is None:
        raise AssertionError("expected an array, got None (a gradient that never arrived?)")
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.get() if hasattr(x, "get") else np.asarray(x)  # .get(): cupy -> numpy


class TorchComparison:
    """Compare one computation in tinygrad_wave with the same computation in torch."""

    def __init__(self, device, dtype, rng):
        self.device, self.dtype, self.rng = device, dtype, rng
        self.tol = TOLERANCE[dtype]
        self.torch_dtype = torch.from_numpy(np.zeros(0, dtype)).dtype

    # random inputs (float64 here; `leaves` casts them to the test's dtype)

    def normal(self, *shape):
        return self.rng.standard_normal(shape)

    def positive(self, *shape):
        """For log, fractional powers: values in [0.5, 2]."""
        return self.rng.uniform(0.5, 2.0, shape)

    def nonzero(self, *shape):
        """For denominators: |values| in [0.5, 2], either sign."""
        return self.positive(*shape) * self.rng.choice([-1.0, 1.0], shape)

    # building and comparing

    def leaves(self, array, requires_grad=True):
        """The same values as a tinygrad_wave leaf on the device and a torch leaf.
        Float arrays take the test's dtype; integer arrays (indices) need no grad."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.dtype)
        else:
            requires_grad = False
        return (Tensor(array, requires_grad=requires_grad, device=self.device),
                torch.tensor(array, requires_grad=requires_grad))

    def assert_close(self, ours, theirs, what):
        """Same shape, same dtype, same values (to this dtype's tolerance)."""
        ours, theirs = host(ours), host(theirs)
        assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, torch has {theirs.shape}"
        assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, torch has {theirs.dtype}"
        np.testing.assert_allclose(ours, theirs, err_msg=what, **self.tol)

    def backward_both(self, out, ref):
        """Push one random upstream gradient through both graphs."""
        g = np.asarray(self.rng.standard_normal(tuple(ref.shape)), dtype=self.dtype)
        out.backward(g)  # a host array: the engine moves it to out's device
        ref.backward(torch.tensor(g))

    def __call__(self, ours_fn, torch_fn, *arrays, requires_grad=True):
        """Run ours_fn and torch_fn on the same `arrays` and compare the outputs and
        the gradient of every input. `requires_grad` is one bool or one per array.
        Returns the two outputs, for further checks."""
        if isinstance(requires_grad, bool):
            requires_grad = [requires_grad] * len(arrays)
        pairs = [self.leaves(a, r) for a, r in zip(arrays, requires_grad)]
        ours_in, torch_in = zip(*pairs)
        out, ref = ours_fn(*ours_in), torch_fn(*torch_in)
        self.assert_close(out, ref, "forward output")
        self.backward_both(out, ref)
        for i, (x, t) in enumerate(pairs):
            if t.requires_grad:
                self.assert_close(x.grad, t.grad, f"gradient of input {i}")
            else:  # an input that wants no grad must not get one
                assert x.grad is None, f"input {i} has requires_grad=False but got a .grad"
        return out, ref


# --- makemore twins in plain torch, shared by the layer and whole-model checks -------------

def torch_leaf(t):
    """A torch copy of a tinygrad_wave tensor, a leaf that wants a grad if the original does."""
    return torch.tensor(t.numpy(), requires_grad=t.requires_grad)


class TorchBatchNorm1d:
    """makemore's BatchNorm1d in torch: UNBIASED variance in the normalisation and in the
    running_var update (torch.nn.BatchNorm1d normalises with the biased one)."""

    def __init__(self, ours):
        self.eps, self.momentum, self.training = ours.eps, ours.momentum, ours.training
        self.gamma, self.beta = torch_leaf(ours.gamma), torch_leaf(ours.beta)
        self.running_mean, self.running_var = torch_leaf(ours.running_mean), torch_leaf(ours.running_var)

    def __call__(self, x):
        dims = (0,) if x.ndim == 2 else (0, 1)  # per channel: over the batch (and time)
        if self.training:
            mean, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True)
            with torch.no_grad():
                m = self.momentum
                self.running_mean = (1 - m) * self.running_mean + m * mean.reshape(-1)
                self.running_var = (1 - m) * self.running_var + m * var.reshape(-1)
        else:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


@pytest.fixture(scope="session")
def words_file(tmp_path_factory):
    """A small names file (about 400 names over 10 letters): training on it takes well under a second."""
    rng = random.Random(0)
    words = {"".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))) for _ in range(400)}
    path = tmp_path_factory.mktemp("data") / "words.txt"
    path.write_text("\n".join(sorted(words)))
    return path
