"""Elementwise ops: out_i = f(x_i) (or f(a_i, b_i)), so each backward is
g_i times the local derivative f'(x_i) at the same element, and nothing mixes
elements -- except broadcasting, whose backward is `unbroadcast`.
"""
import math

from .. import backend
from ..autograd import Function


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


# --- two inputs (broadcasting) -------------------------------------------------

class Add(Function):
    saves_inputs = False

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        """out = a + b:  d out/da = d out/db = 1, so da = db = g (summed over broadcast copies)."""
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    saves_inputs = False

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        """out = a - b:  d out/da = 1, d out/db = -1, so da = g, db = -g."""
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        # a's gradient reads b and b's reads a: keep only those (x * 0.5 keeps nothing of x)
        self.a, self.b = a if self.needs_grad[1] else None, b if self.needs_grad[0] else None
        return a * b

    def reads_input(self, i):
        return self.needs_grad[1 - i]

    def backward(self, g):
        """out = a * b:  d out/da = b, d out/db = a, so da = g * b, db = g * a."""
        return (unbroadcast(g * self.b, self.shapes[0]) if self.needs_grad[0] else None,
                unbroadcast(g * self.a, self.shapes[1]) if self.needs_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a_shape = a.shape
        self.a, self.b = a if self.needs_grad[1] else None, b  # both gradients read b; only b's reads a
        return a / b

    def reads_input(self, i):
        return i == 1 or self.needs_grad[1]

    def backward(self, g):
        """out = a / b = a * b^-1:  d out/da = 1 / b,  d out/db = a * (-b^-2) = -a / b^2,
        so da = g / b and db = -(g / b) * a / b (g / b computed once)."""
        a, b = self.a, self.b
        g_over_b = g / b
        return (unbroadcast(g_over_b, self.a_shape) if self.needs_grad[0] else None,
                unbroadcast(-g_over_b * a / b, b.shape) if self.needs_grad[1] else None)


# --- one input ------------------------------------------------------------------

class Neg(Function):
    saves_inputs = False

    def forward(self, x):
        return -x

    def backward(self, g):
        """out = -x:  d out/dx = -1, so dx = -g."""
        return (-g,)


class Pow(Function):
    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return power(x, exponent)

    def backward(self, g):
        """out = x^p:  d out/dx = p x^(p-1), so dx = g p x^(p-1);
        for p = 0, out is constant and dx = 0 (not 0 * inf at x = 0)."""
        p = self.exponent
        if p == 0:
            return (self.xp.zeros_like(g),)
        dx = g * p
        dx *= power(self.x, p - 1)  # (in place, rounded as g * p * x^(p-1) is: left to right)
        return (dx,)


SMALL_POWERS = range(-2, 4)  # the exponents torch's CPU kernel computes as products: x * x * x, 1 / (x * x)


def power(x, p):
    """x ** p for a number p. A small whole p is a product of x's, as torch computes it (so the
    bits are torch's): NumPy's power with a float exponent calls pow() for each element, ~260
    times slower on float32 for x ** 3.0 on some CPUs."""
    if p not in SMALL_POWERS or x.dtype.kind != "f":  # (a float is in the range when it equals an int in it)
        return x ** p  # (integer arrays: NumPy's own integer power, and its refusal of negative p)
    if p == 0:
        return x ** 0  # ones (and 1 for nan, as pow() and torch give)
    out = x * x if abs(p) > 1 else x.copy()  # (x ** 1 is new memory too: an output is never its input)
    for _ in range(abs(int(p)) - 2):
        out *= x
    return out if p > 0 else 1 / out


class RPow(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x, base):
        self.out = base ** x
        # (a negative base has no real logarithm: no gradient; ln 0 = -inf)
        self.log_base = math.log(base) if base > 0 else -math.inf if base == 0 else math.nan
        return self.out

    def backward(self, g):
        """out = c^x = e^(x ln c) for a number c > 0:  d out/dx = ln c * c^x = ln c * out,
        so dx = g * out * ln c, from the saved output. For c = 0, out is 0 for x > 0, 1 at
        x = 0 and inf for x < 0: flat where x >= 0 (dx = 0, as torch takes it) and
        out * ln 0 = -inf where x < 0."""
        if self.log_base == -math.inf:
            zero, minus_inf = self.out.dtype.type(0), self.out.dtype.type(-math.inf)
            return (g * self.xp.where(self.out > 1, minus_inf, zero),)
        return (g * self.out * self.log_base,)


class Exp(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = self.xp.exp(x)
        return self.out

    def backward(self, g):
        """out = e^x:  d out/dx = e^x = out (saved by forward), so dx = g * out."""
        return (g * self.out,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, g):
        """out = ln x:  d out/dx = 1 / x, so dx = g / x."""
        return (g / self.x,)


class Log10(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log10(x)

    def backward(self, g):
        """out = log10 x = ln x / ln 10:  d out/dx = 1 / (x ln 10), so dx = g / (x ln 10)."""
        return (g / (self.x * math.log(10)),)


class Sqrt(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = self.xp.sqrt(x)
        return self.out

    def backward(self, g):
        """out = x^(1/2):  d out/dx = 1/2 x^(-1/2) = 1 / (2 out), so dx = g / (2 out)."""
        return (g / (2 * self.out),)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return self.xp.abs(x)

    def backward(self, g):
        """out = |x|:  d out/dx = sign(x) (+1 right of 0, -1 left of it; 0 at 0 and at nan, as
        torch picks), so dx = g * sign(x)."""
        x = self.x
        return (g * self.xp.where(x == x, self.xp.sign(x), 0),)  # (x == x: not nan)


class Tanh(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.out = self.xp.tanh(x)
        return self.out

    def backward(self, g):
        """out = tanh x = (e^x - e^-x) / (e^x + e^-x):  by the quotient rule
        d out/dx = 1 - tanh(x)^2 = 1 - out^2, so dx = g (1 - out^2), from the saved output."""
        y = self.out
        return (g * (1 - y * y),)


class Sigmoid(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x):
        xp = self.xp
        # 1 / (1 + e^-x) overflows e^-x for very negative x; e^x / (1 + e^x) is the same value there
        e = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, g):
        """out = s(x) = 1 / (1 + e^-x):  d out/dx = e^-x / (1 + e^-x)^2
        = s(x) (1 - s(x)) = out (1 - out), so dx = g out (1 - out)."""
        y = self.out
        return (g * y * (1 - y),)


class ReLU(Function):
    saves_inputs = False

    def forward(self, x):
        self.passes = ~(x <= 0)  # x > 0, and nan (whose gradient torch passes on)
        return self.xp.maximum(x, 0)

    def backward(self, g):
        """out = max(x, 0):  d out/dx = 1 where x > 0, else 0 (0 at x = 0, as torch picks; 1 at
        nan, as torch's x <= 0 test gives), so dx = g where x > 0 and 0 elsewhere."""
        return (g * self.passes,)


class Clone(Function):
    saves_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        """out = x, in new memory:  d out/dx = 1, so dx = g."""
        return (g,)


class To(Function):
    saves_inputs = False

    def forward(self, x, dtype, device):
        self.dtype, self.device = x.dtype, backend.device_of(x)
        return backend.to_array(x, dtype, device)

    def backward(self, g):
        """out = x on another dtype or device:  d out/dx = 1, so dx = g, cast and
        moved back to x's dtype and device."""
        return (backend.to_array(g, self.dtype, self.device),)
