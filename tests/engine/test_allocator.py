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


def faults_a_round(how, env=None):
    out = subprocess.run([sys.executable, "-c", ROUNDS, how], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return float(out.stdout)


def clean_env():
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
