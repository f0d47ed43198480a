"""Importing tinygrad_wave keeps freed memory for the next step (tinygrad_wave/allocator.py): after
a round that makes and frees the same arrays, the heap still holds them, free, where glibc alone
gives them back to the OS (and the next round faults every page in again). Read with glibc's
mallinfo2, which counts bytes, so the tests hold whatever size the machine's pages are."""
import os
import platform
import subprocess
import sys

import pytest

import tinygrad_wave.allocator

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator's limits are glibc's")

# A training step's pattern: arrays of 1 MB and 4 MB pile up to 80 MB, then all go. Printed: the
# MB the heap holds free afterwards (mallinfo2's fordblks), or "none" without mallinfo2 (glibc < 2.33).
ROUND = """
import ctypes, sys
import numpy as np
if sys.argv[1] == "import":
    import tinygrad_wave

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
if not hasattr(libc, "mallinfo2"):
    print("none")
    sys.exit()
libc.mallinfo2.restype = MallInfo2
for _ in range(2):
    arrays = [np.ones(n) for n in [1 << 17] * 40 + [1 << 19] * 10]
    del arrays
print(libc.mallinfo2().fordblks / 2**20)
"""


def free_mb_after_a_round(how, env):
    out = subprocess.run([sys.executable, "-c", ROUND, how], capture_output=True, text=True, check=True, env=env)
    if out.stdout.strip() == "none":
        pytest.skip("this glibc has no mallinfo2 (2.33 and later do)")
    return float(out.stdout)


def clean_env():
    """This environment without the allocator's options."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}


def test_importing_keeps_a_steps_freed_memory():
    env = clean_env()
    assert free_mb_after_a_round("no import", env) < 10  # glibc alone gave it back (measured: 0)
    assert free_mb_after_a_round("import", env) >= 75  # kept, for the next round (measured: 80)


def test_the_users_own_allocator_options_stand():
    """A MALLOC_* variable means the user chose: importing changes nothing, and glibc gives the
    memory back as under its defaults."""
    env = {**clean_env(), "MALLOC_ARENA_MAX": "2"}  # an option that has nothing to do with giving memory back
    assert free_mb_after_a_round("import", env) < 10


def test_it_says_whether_it_set_the_limits(monkeypatch):
    for name in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    assert tinygrad_wave.allocator.keep_freed_memory() is True  # (again: the same limits as at import)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")
    assert tinygrad_wave.allocator.keep_freed_memory() is False


def test_it_leaves_another_c_library_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))  # musl, or no C library Python can name
    assert tinygrad_wave.allocator.keep_freed_memory() is False
