"""Ops that choose, element by element, between a value and something else by a
mask fixed in forward: masked_fill (a causal mask's -inf), where, tril/triu, clamp. Each
backward sends g back along the path the forward took and 0 along the other.
(Composing them from arithmetic would not do: x * keep + -inf * (1 - keep) is
nan wherever keep is 1, since 0 * -inf is nan.)
"""
from ..autograd import Function
from .elementwise import unbroadcast


class MaskedFill(Function):
    saves_inputs = False

    def forward(self, x, mask, value):
        self.mask = mask
        out = x.copy()  # then written where mask: copyto(where=) is about twice as fast as where()
        self.xp.copyto(out, x.dtype.type(value), where=mask)
        return out

    def backward(self, g):
        """out_i = value where mask_i, else x_i:  d out_i/dx_i = 0 where the forward wrote
        value and 1 elsewhere, so dx = g with 0 where mask (mask broadcasts against x)."""
        dx = g.copy()
        self.xp.copyto(dx, 0, where=self.mask)
        return (dx,)


class Where(Function):
    saves_inputs = False

    def forward(self, a, b, condition):
        self.condition, self.shapes = condition, (a.shape, b.shape)
        return self.xp.where(condition, a, b)

    def backward(self, g):
        """out_i = a_i where condition_i, else b_i:  d out_i/da_i = [condition_i],
        d out_i/db_i = [not condition_i], so da = g where condition, db = g elsewhere
        (each summed over the copies broadcasting made)."""
        zero = g.dtype.type(0)
        return (unbroadcast(self.xp.where(self.condition, g, zero), self.shapes[0]),
                unbroadcast(self.xp.where(self.condition, zero, g), self.shapes[1]))


class Triangle(Function):
    saves_inputs = False

    def forward(self, x, diagonal, upper):
        self.diagonal, self.upper = diagonal, upper
        return self._keep(x)

    def _keep(self, a):
        """a with the other triangle of its last two dims set to 0."""
        return (self.xp.triu if self.upper else self.xp.tril)(a, self.diagonal)

    def backward(self, g):
        """tril: out_ij = x_ij where j - i <= diagonal, else 0 (triu: j - i >= diagonal).
        d out_ij/dx_ij is 1 in the kept triangle and 0 outside, so dx = tril(g) (triu(g))."""
        return (self._keep(g),)


class Clamp(Function):
    saves_inputs = False

    def forward(self, x, low, high):
        out = x if low is None else self.xp.maximum(x, x.dtype.type(low))  # (nan stays nan, as torch's)
        out = out if high is None else self.xp.minimum(out, x.dtype.type(high))
        self.inside = self.xp.ones(x.shape, bool) if low is None else x >= low
        if high is not None:
            self.inside &= x <= high
        return out

    def backward(self, g):
        """out = min(max(x, low), high):  d out/dx = 1 where low <= x <= high (x itself came
        through, the ends included, as torch counts them) and 0 where a bound replaced x (and
        at nan, which compares false), so dx = g inside the bounds and 0 outside."""
        return (self.xp.where(self.inside, g, g.dtype.type(0)),)
