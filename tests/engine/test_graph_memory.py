"""What a graph holds between forward and backward: what each backward will read, which its
forward saved, and of an input that another op made only its shape, dtype and version (an
autograd.Intermediate), as torch's graph does. An intermediate the code drops is freed at once."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from tinygrad_wave import Tensor


def peak_bytes(run):
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("op, slope", [(lambda y: y + 1.0, 1.0), (lambda y: y * 0.5, 0.5)], ids=["add", "scale"])
def test_a_chain_of_ops_holds_no_more_than_the_arrays_in_use(op, slope):
    """Eight ops on 1 MB arrays after x * w, then backward: four such arrays at once at most
    (in forward, the current y and the next; in backward, the last y, which the code still
    holds, the gradient a node receives and the one it sends on, and w's). A node that held
    its input tensors would hold all nine outputs until backward."""
    x = Tensor(np.ones((512, 512), dtype=np.float32))
    w = Tensor(np.ones((512, 512), dtype=np.float32), requires_grad=True)

    def step():
        y = x * w
        for _ in range(8):
            y = op(y)
        y.sum().backward()
    peak = peak_bytes(step)
    assert peak < 4.5 * x.numpy().nbytes, f"{peak / x.numpy().nbytes:.1f} arrays of 1 MB at once"
    assert np.array_equal(w.grad.numpy(), np.full((512, 512), slope ** 8, dtype=np.float32))  # (x is ones)


def test_an_intermediate_the_code_drops_is_freed_and_backward_still_right():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    y = h.tanh()  # Tanh saves its output, Mul nothing of x (the constant needs no gradient)
    gone = weakref.ref(h)
    del h
    gc.collect()
    assert gone() is None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * (1 - np.tanh(3.0 * x.numpy()) ** 2), rtol=1e-12)
