"""Finite-difference gradient checking, with the meaning of torch.autograd.gradcheck.

For a function f of tensors, the Jacobian J[k, j] = d out_k / d x_j is built
twice: row by row from backward (seeding the upstream gradient with the k-th
unit vector), and column by column from central differences

    J[:, j] ~ (f(x + eps e_j) - f(x - eps e_j)) / (2 eps),

whose error is O(eps^2). The two must agree to |a - n| <= atol + rtol |n|.
Use float64: in float32 the rounding error of f swamps the difference.
"""
import math

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    pass


def _jacobians(fn, inputs, x, out_shape, eps):
    """(analytical, numerical) Jacobians of fn with respect to input x, as arrays (out_size, x_size)."""
    xp = x.xp
    out_size, x_size = math.prod(out_shape), x.numel()
    analytical = xp.zeros((out_size, x_size))
    for k in range(out_size):
        for t in inputs:
            if isinstance(t, Tensor):
                t.grad = None
        seed = xp.zeros(out_size)
        seed[k] = 1.0
        try:
            fn(*inputs).backward(seed.reshape(out_shape))
        except RuntimeError as e:  # a backward the walk refused (a gradient of the wrong shape): a failed check
            raise GradcheckError(f"backward failed: {e}") from e
        if x.grad is not None:
            analytical[k] = x.grad._data.reshape(-1)
    x.grad = None

    numerical = xp.zeros((out_size, x_size))
    x.data = x._data.copy()  # contiguous, so that `flat` below is a view into it
    flat = x._data.reshape(-1)
    with no_grad():
        for j in range(x_size):
            original = flat[j].item()
            flat[j] = original + eps
            plus = fn(*inputs)._data.reshape(-1).copy()
            flat[j] = original - eps
            minus = fn(*inputs)._data.reshape(-1).copy()
            flat[j] = original
            numerical[:, j] = (plus - minus) / (2 * eps)
    return analytical, numerical


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Check fn's backward against central differences for every input that
    requires grad. Returns True, or raises GradcheckError naming the worst mismatch."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != "float64":
            raise ValueError(f"gradcheck needs float64 inputs (input {i} is {inputs[i].dtype}): "
                             "finite differences in float32 are rounding noise")
    out_shape = fn(*inputs).shape
    grads_before = [t.grad if isinstance(t, Tensor) else None for t in inputs]
    try:
        for i in checked:
            _compare(*_jacobians(fn, inputs, inputs[i], out_shape, eps), i, atol, rtol, inputs[i].xp)
    finally:  # the inputs' .grad as the caller left them
        for t, grad in zip(inputs, grads_before):
            if isinstance(t, Tensor):
                t.grad = grad
    return True


def _compare(analytical, numerical, i, atol, rtol, xp):
    """Raise GradcheckError at the element where |a - n| exceeds atol + rtol |n| the most."""
    excess = abs(analytical - numerical) - (atol + rtol * abs(numerical))
    excess = xp.nan_to_num(excess, nan=xp.inf)  # a NaN gradient is the worst mismatch, not none
    worst = int(excess.argmax())
    if excess.reshape(-1)[worst] > 0:
        k, j = divmod(worst, analytical.shape[1])
        raise GradcheckError(
            f"gradient mismatch for input {i}, d out[{k}] / d x[{j}] (flat indices): "
            f"backward gives {analytical[k, j].item():.8g}, "
            f"central differences give {numerical[k, j].item():.8g}")
