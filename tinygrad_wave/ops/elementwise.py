"""The small ops, one Function each: forward computes, backward applies the chain rule.

Notation in the derivations: out = f(inputs), g = dL/d out (the upstream
gradient, same shape as out), and each backward returns dL/d input.
The fused ops (batch norm, cross-entropy, softmax) live in functional.py.
"""
import math
import operator

from . import backend
from .autograd import Function


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`: the backward of NumPy broadcasting.

    Broadcasting copies an input along new leading dims and along dims of
    size 1; a copied value receives the sum of the gradients of its copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    copied = tuple(i for i, n in enumerate(grad.shape)
                   if n != 1 and (i < extra or shape[i - extra] == 1))
    if copied:  # (a dim that is 1 on both sides has nothing to sum: reshape drops it)
        grad = grad.sum(axis=copied, keepdims=True)
    return grad.reshape(shape)


def normalize_dims(dim, ndim):
    """`dim` (None, an int or a tuple, negatives allowed) as a sorted tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    try:
        dims = (operator.index(dim),)  # an int, numpy ints too
    except TypeError:
        dims = tuple(operator.index(d) for d in dim)
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):  # a 0-d tensor takes dim 0 or -1, as in torch
            raise IndexError(f"dim {d} is out of range for a tensor of {ndim} dims")
    normalized = sorted(d % ndim for d in dims) if ndim else []
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"dim {dim} names the same dim twice")
    return tuple(normalized)


# --- elementwise, two inputs (broadcasting) ---------------------------------

class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        """d(a + b)/da = d(a + b)/db = 1."""
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        """d(a - b)/da = 1, d(a - b)/db = -1."""
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        """d(a * b)/da = b, d(a * b)/db = a."""
        a, b = self.a, self.b
        return (unbroadcast(g * b, a.shape) if self.needs_grad[0] else None,
                unbroadcast(g * a, b.shape) if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        """d(a / b)/da = 1 / b, d(a / b)/db = -a / b^2."""
        a, b = self.a, self.b
        g_over_b = g / b
        return (unbroadcast(g_over_b, a.shape) if self.needs_grad[0] else None,
                unbroadcast(-g_over_b * a / b, b.shape) if self.needs_grad[1] else None)


# --- elementwise, one input ---------------------------------------------------

class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        """d(-x)/dx = -1."""
        return (-g,)


class Pow(Function):
    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x ** exponent

    def backward(self, g):
        """d(x^p)/dx = p x^(p-1); for p = 0 that is 0 (not 0 * inf at x = 0)."""
        p = self.exponent
        if p == 0:
            return (self.xp.zeros_like(g),)
        return (g * p * self.x ** (p - 1),)


class Exp(Function):
    def forward(self, x):
        self.out = self.xp.exp(x)
        return self.out

    def backward(self, g):
        """d(e^x)/dx = e^x, which forward already computed."""
        return (g * self.out,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, g):
        """d(log x)/dx = 1 / x."""
        return (g / self.x,)


class Tanh(Function):
    def forward(self, x):
        self.out = self.xp.tanh(x)
        return self.out

    def backward(self, g):
        """y = tanh(x)  =>  dy/dx = 1 - tanh(x)^2 = 1 - y^2, from the saved output."""
        y = self.out
        return (g * (1 - y * y),)


# --- reductions ----------------------------------------------------------------

class Sum(Function):
    def forward(self, x, dims, keepdim):
        self.x_shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return self.xp.asarray(x.sum(axis=dims, keepdims=keepdim))  # a 0-d array, not a NumPy scalar

    def backward(self, g):
        """out = sum_i x_i  =>  d out / d x_i = 1: every summed element gets g, so
        g is repeated along the reduced dims (a broadcast view: no memory copied)."""
        if not self.keepdim:
            g = g.reshape([1 if d in self.dims else n for d, n in enumerate(self.x_shape)])
        return (self.xp.broadcast_to(g, self.x_shape),)


class Mean(Sum):
    def forward(self, x, dims, keepdim):
        self.count = math.prod(x.shape[d] for d in dims)
        return self.xp.asarray(super().forward(x, dims, keepdim) / self.count)

    def backward(self, g):
        """out = sum_i x_i / n  =>  d out / d x_i = 1 / n."""
        return super().backward(g / self.count)


# --- shape and indexing ----------------------------------------------------------

class Reshape(Function):
    def forward(self, x, shape):
        self.x_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        """A reshape moves no values: the gradient is reshaped back."""
        return (g.reshape(self.x_shape),)


class Transpose(Function):
    def forward(self, x, dim0, dim1):
        self.dims = dim0, dim1
        return self.xp.swapaxes(x, dim0, dim1)

    def backward(self, g):
        """Swapping two axes is undone by swapping them again."""
        return (self.xp.swapaxes(g, *self.dims),)


class Index(Function):
    def forward(self, x, index):
        # an index array is copied: changed by the caller before backward, it would misroute the gradient
        self.x_shape, self.index = x.shape, index.copy() if backend.is_array(index) else index
        return x[index]

    def backward(self, g):
        """out[k] = x[index[k]]  =>  dL/dx[i] = sum of g[k] over every k with index[k] = i.

        A gather forward is a scatter-add backward. A row read twice (the same
        character twice in a context) must get both gradients added, which
        `grad[index] += g` would not do: it writes the repeated row once."""
        return (backend.scatter_add(self.xp, self.x_shape, self.index, g),)


class To(Function):
    def forward(self, x, dtype, device):
        self.dtype, self.device = x.dtype, backend.device_of(x)
        return backend.to_array(x, dtype, device)

    def backward(self, g):
        """A copy to another dtype or device: the gradient goes back the same way."""
        return (backend.to_array(g, self.dtype, self.device),)


class MatMul(Function):
    def forward(self, a, b):
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: "
                             f"{a.shape[-1]} columns against {b.shape[-2]} rows")
        self.a, self.b = a, b
        if b.ndim == 2:
            # (..., K) @ (K, N) as one (M, K) @ (K, N) GEMM on a reshaped view:
            # a single BLAS call is faster than numpy's stacked matmul here.
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[1])
        return a @ b

    def backward(self, g):
        """out = a @ b, out_ij = sum_k a_ik b_kj  =>  da = g @ b^T,  db = a^T @ g.

        With batch dims, b's gradient sums over every batch entry that used it:
        for a 2-D b that is one GEMM over the flattened batch, a2^T @ g2."""
        a, b = self.a, self.b
        ga = gb = None
        if b.ndim == 2:
            g2 = g.reshape(-1, g.shape[-1])
            if self.needs_grad[0]:
                ga = (g2 @ b.T).reshape(a.shape)
            if self.needs_grad[1]:
                gb = a.reshape(-1, a.shape[-1]).T @ g2
        else:
            swap = self.xp.swapaxes
            if self.needs_grad[0]:
                ga = unbroadcast(g @ swap(b, -1, -2), a.shape)
            if self.needs_grad[1]:
                gb = unbroadcast(swap(a, -1, -2) @ g, b.shape)
        return ga, gb
