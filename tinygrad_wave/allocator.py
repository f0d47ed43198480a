"""Keep the memory a training step frees for the next step, instead of handing it back to the OS.

A step makes and frees the same arrays every time: the forward's activations pile up, the
backward lets them go. Linux's C library (glibc) gives freed memory at the top of its heap
back to the OS once more than a few MB of it is free, and an array bigger than a threshold
gets pages of its own, unmapped when it is freed. The next step asks for the same memory
again, and the OS zeroes every 4 KB page on its first touch (a page fault). Measured on one
core (docs/BENCHMARKS.md): gpt.py's small eager step took 1,500-2,000 faults a step, 1.5-2.5
ms of its 17-20; makemore part 5's at batch 8192 1,600, 8 ms of its 148.

glibc raises both limits by itself once it sees a big block freed, up to a 32 MB block; we
start it there, and keep up to 512 MB of freed heap, so that a large step's working set stays
with the process. The cost: a process holds on to memory it has freed (up to those 512 MB on
top of its peak) until it ends. Where the user has set glibc's allocator options themselves
(a MALLOC_* or GLIBC_TUNABLES environment variable), theirs stand and this does nothing.
"""
import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
KEPT_FREE_BYTES = 512 << 20  # freed memory at the heap's top kept, not given back
OWN_PAGES_FROM_BYTES = 32 << 20  # smaller blocks come from the heap (glibc's own ceiling for this limit)


def keep_freed_memory():
    """Set glibc's two limits (see above). True if they were set; False where the C library is
    not glibc, or the user has chosen the allocator's options."""
    if platform.libc_ver()[0] != "glibc":
        return False
    if "GLIBC_TUNABLES" in os.environ or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    return bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES)) and bool(mallopt(M_MMAP_THRESHOLD,
                                                                            OWN_PAGES_FROM_BYTES))
