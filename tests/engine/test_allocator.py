"""Importing tinygrad_wave keeps freed memory for the next step (tinygrad_wave/allocator.py):
a loop that makes and frees the same arrays faults no pages in after its first round."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator's limits are glibc's")

# Rounds of a training step's pattern: arrays of 1 MB and 4 MB pile up to 80 MB, then all go.
# Page faults are counted from the second round on, when every array has had memory once.
ROUNDS = """
import resource, sys
import numpy as np
if sys.argv[1] == "import":
    import tinygrad_wave
def one_round():
    arrays = [np.ones(n) for n in [1 << 17] * 40 + [1 << 19] * 10]
    del arrays
one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    one_round()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_a_round(how, env):
    out = subprocess.run([sys.executable, "-c", ROUNDS, how], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout)


def clean_env():
    """This environment without the allocator's options."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}


def test_importing_keeps_a_steps_freed_memory():
    env = clean_env()
    without = faults_a_round("no import", env)
    assert without > 1000  # glibc alone gives the memory back and faults it in again: about 15,000 pages a round
    assert faults_a_round("import", env) < 50


def test_the_users_own_allocator_options_stand():
    """A MALLOC_* variable means the user chose: importing changes nothing, and the pages fault in
    again as under glibc's defaults."""
    env = {**clean_env(), "MALLOC_ARENA_MAX": "2"}  # an option that has nothing to do with returning memory
    assert faults_a_round("import", env) > 1000


def test_it_says_whether_it_set_the_limits(monkeypatch):
    from tinygrad_wave.allocator import keep_freed_memory
    for name in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(name)
    assert keep_freed_memory() is True  # (again: the same limits as at import)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000")
    assert keep_freed_memory() is False
