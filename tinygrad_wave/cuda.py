"""torch.cuda, for lecture code that asks: `device = 'cuda' if torch.cuda.is_available() else 'cpu'`.

A GPU here is one CuPy sees (backend.py). Random numbers for "cuda" tensors are drawn
on the host from the CPU generator and sent (random.py), so torch.manual_seed seeds
them all and there is no CUDA generator of its own to seed.
"""
from . import backend


def is_available():
    """True only where CuPy imports and sees at least one GPU."""
    return backend.gpu_count() > 0


def device_count():
    return backend.gpu_count()


def manual_seed_all(seed):
    """torch seeds each GPU's generator here; this engine has none (every draw comes from the
    CPU generator, seeded by torch.manual_seed), so only the seed is checked."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"manual_seed_all expects an integer seed, got {type(seed).__name__}")


manual_seed = manual_seed_all


def synchronize():
    """Wait for the GPU to finish its queued work (a timing needs it); an error without a GPU, as torch's."""
    if not is_available():
        raise RuntimeError("torch.cuda.synchronize() needs a CUDA GPU, and CuPy sees none")
    backend.synchronize()
