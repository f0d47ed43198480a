"""Keep the memory a training step frees for the next step, instead of handing it back to the OS.

A step makes and frees the same arrays every time: the forward's activations pile up, the
backward lets them go. Linux's C library (glibc) has two limits that decide what happens to
freed memory. A block of at least the mmap limit gets pages of its own, unmapped when it is
freed; and once more than the trim limit is free at the top of the heap, glibc gives it back
to the OS. Both start at 128 KB, and glibc raises them as it sees big blocks freed: the mmap
limit to the block's size (up to 32 MB), the trim limit to twice that. Either way the next
step asks for the same memory again, and the OS zeroes every 4 KB page on its first touch (a
page fault). Measured on one thread, each step alone in its process (`bench_gpt.py --alone`,
docs/BENCHMARKS.md): gpt.py's small eager step took 1,500-1,700 faults a step, and runs 12 %
faster without them; makemore.py's Transformer took 3,000-3,400, and runs 22 % faster.

So we set both limits (which turns glibc's own raising off): the mmap limit at 32 MB, the trim
limit at 512 MB. With a 64 MB trim limit, part 5's step at batch 8192 still faulted 925 pages a
step. Arrays over 32 MB still get pages of their own. The cost: a process gives memory back to
the OS only when more than 512 MB is free at the top of its heap, so its memory use stays near
its peak until it ends. Where the user has set glibc's allocator options themselves (a MALLOC_*
or GLIBC_TUNABLES environment variable), theirs stand and this does nothing.
"""
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
TRIM_LIMIT_BYTES = 512 << 20
MMAP_LIMIT_BYTES = 32 << 20


def keep_freed_memory():
    """Set glibc's two limits (see above). True if both were set; False where the C library is
    not glibc, or the user has chosen the allocator's options."""
    if platform.libc_ver()[0] != "glibc":
        return False
    if "GLIBC_TUNABLES" in os.environ or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        import ctypes
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (ImportError, OSError, AttributeError):  # a Python built without ctypes, say
        return False
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_LIMIT_BYTES)
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_LIMIT_BYTES)
    return bool(trim_set and mmap_set)
