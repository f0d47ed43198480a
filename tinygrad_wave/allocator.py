"""Keep the memory a training step frees for the next step, instead of handing it back to the OS.

A step makes and frees the same arrays every time: the forward's activations pile up, the
backward lets them go. Linux's C library (glibc) gives freed memory at the top of its heap
back to the OS once more than a few MB of it is free, and an array bigger than a threshold
gets pages of its own, unmapped when it is freed. The next step asks for the same memory
again, and the OS zeroes every 4 KB page on its first touch (a page fault). Measured on one
thread, each step alone in its process (`bench_gpt.py --alone`, docs/BENCHMARKS.md): gpt.py's
small eager step took 1,500-1,700 faults a step and runs 11 % faster without them; makemore.py's
Transformer took 3,000-3,400 and runs 22 % faster.

glibc raises both limits by itself when it sees a big block freed, the first up to 32 MB and
the second to twice the first. We start the first at that ceiling, and set the second far
higher, 512 MB: part 5's step at batch 8192 frees more than 64 MB at a time, and still faulted
900 pages a step with 64. The cost: a process keeps up to those 512 MB of what it has
freed, so its memory use stays near its peak until it ends. Where the user has set glibc's allocator options themselves
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
