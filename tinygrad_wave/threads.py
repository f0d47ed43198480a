"""How many threads NumPy's BLAS may use: one for small batches, every core for large ones."""
from contextlib import contextmanager


def default_blas_threads(batch_size):
    """1 for batches up to 128, else None (every core). Measured on 2 cores
    (docs/BENCHMARKS.md): at small batches a second thread buys little, and a
    two-thread BLAS slows tenfold when another process holds a core; from
    batch 512 up two threads are ~40 % faster."""
    return 1 if batch_size <= 128 else None


@contextmanager
def blas_threads(n):
    """Limit the BLAS to n threads inside the block (None: leave it alone).
    One thread is faster for the small matrices of batch-32 training."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=n, user_api="blas"):
        yield
