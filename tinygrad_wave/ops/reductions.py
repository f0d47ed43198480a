"""Reductions: out collects many elements of x into one. The backward hands
g back to every element that took part, weighted by how much it counted.
"""
import math
import operator

from ..autograd import Function


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


def max_kept(xp, x, dim):
    """The max of x along one dim, which stays as a dim of size 1, read at the argmax as
    Max does: NumPy's max over many short rows is several times slower than its argmax
    (a (16, 64, 64) float32 array over its last dim: about 95 us against 20 us, NumPy 2.4,
    one thread). The same value, so the same bits downstream; a NaN wins either way."""
    if x.shape[dim] == 0:  # an empty dim has no max (and no argmax): nothing to shift by
        return xp.zeros(x.shape[:dim] + (1,) + x.shape[dim:][1:], dtype=x.dtype)
    return xp.take_along_axis(x, x.argmax(axis=dim, keepdims=True), axis=dim)


def sum_of_products(xp, a, b, dims, keepdim=True):
    """sum(a * b) over `dims` (a tuple), the reduced dims kept as size 1 (or dropped).
    einsum multiplies and adds in one pass, without the a * b array the plain spelling
    makes first: over short rows, such as layer norm's, about 3x faster
    (a (1024, 64) float32 pair: 20 us against 65 us, NumPy 2.4, one thread)."""
    letters = "abcdefghijklmnopqrstuvwxyz"[:a.ndim]
    kept = "".join(letter for d, letter in enumerate(letters) if d not in dims)
    out = xp.einsum(f"{letters},{letters}->{kept}", a, b)
    return _kept(out, a.shape, dims, keepdim=False) if keepdim else out


def matvec_sum(xp, a, dims, keepdim=True):
    """sum(a) over `dims` (a tuple), the reduced dims kept as size 1 (or dropped). Over a's last
    dims (the rows softmax and layer norm sum) or its first ones (a bias's gradient, summed over
    the positions) as one matrix-vector product with a vector of ones, which BLAS does in one
    pass: NumPy's own sum calls its loop once a row and takes several times as long
    (a (16, 64, 64) float32 array over its last dim: 23 us against 5 us; over its first two:
    24 us against 5 us; NumPy 2.4, one thread). The adds come in BLAS's order instead of
    NumPy's pairwise one: the two sums differ by rounding only. Other dims, and arrays that are
    not floats (whose sums NumPy widens to int64), are NumPy's sum."""
    lead = a.ndim - len(dims)
    if (a.dtype.kind != "f" or a.size == 0 or not dims
            or dims not in (tuple(range(lead, a.ndim)), tuple(range(len(dims))))):
        return a.sum(axis=dims, keepdims=keepdim)
    if dims[0] == lead and lead > 0:  # the last dims: one sum per row
        rows = a.reshape(a.shape[:lead] + (-1,))
        out = rows @ xp.ones(rows.shape[-1], dtype=a.dtype)
    else:  # the first dims: one sum per column
        columns = a.reshape(-1, math.prod(a.shape[len(dims):]))
        out = (xp.ones(columns.shape[0], dtype=a.dtype) @ columns).reshape(a.shape[len(dims):])
    return _kept(out, a.shape, dims, keepdim=False) if keepdim else out


def _kept(g, x_shape, dims, keepdim):
    """g with the reduced dims put back as size 1, so it broadcasts against x."""
    return g if keepdim else g.reshape([1 if d in dims else n for d, n in enumerate(x_shape)])


class Sum(Function):
    saves_inputs = False

    def forward(self, x, dims, keepdim):
        self.x_shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return self.xp.asarray(x.sum(axis=dims, keepdims=keepdim))  # a 0-d array, not a NumPy scalar

    def backward(self, g):
        """out = sum_i x_i:  d out/dx_i = 1 for every summed element, so dx_i = g:
        g repeated along the reduced dims (a broadcast view: no memory copied)."""
        return (self.xp.broadcast_to(_kept(g, self.x_shape, self.dims, self.keepdim), self.x_shape),)


class Mean(Sum):
    def forward(self, x, dims, keepdim):
        self.count = math.prod(x.shape[d] for d in dims)
        return self.xp.asarray(super().forward(x, dims, keepdim) / self.count)

    def backward(self, g):
        """out = sum_i x_i / n:  d out/dx_i = 1 / n, so dx_i = g / n."""
        return super().backward(g / self.count)


class Var(Function):
    saves_inputs = False  # backward reads the centered values it computed, not x

    def forward(self, x, dims, keepdim, correction):
        self.x_shape, self.dims, self.keepdim = x.shape, dims, keepdim
        self.divisor = max(math.prod(x.shape[d] for d in dims) - correction, 0)
        self.centered = x - x.mean(axis=dims, keepdims=True)
        squares = (self.centered * self.centered).sum(axis=dims, keepdims=keepdim)
        # n <= c (one element, unbiased): no variance to estimate; torch gives nan, and nan gradients
        return self.xp.asarray(squares / self.divisor if self.divisor else squares * math.nan)

    def backward(self, g):
        """out = sum_i (x_i - m)^2 / (n - c), m = sum_j x_j / n, c the correction (1: Bessel's):
            d out/dx_i = 2 (x_i - m) / (n - c) - (2 / (n - c)) sum_j (x_j - m) / n
        and sum_j (x_j - m) = 0, so dx_i = g * 2 (x_i - m) / (n - c) (nan where n <= c, as torch's)."""
        scale = 2 / self.divisor if self.divisor else math.nan
        return (_kept(g, self.x_shape, self.dims, self.keepdim) * scale * self.centered,)


class Std(Var):
    def forward(self, x, dims, keepdim, correction):
        self.out = self.xp.sqrt(super().forward(x, dims, keepdim, correction))
        return self.out

    def backward(self, g):
        """out = sqrt(v), v the variance above:  d out/dv = 1 / (2 out), so dv = g / (2 out)
        and dx is Var's backward of dv. Where out = 0 (a constant input) that is 0 * inf:
        std has no derivative there (its graph has a corner); torch picks dx = 0, and so do we."""
        xp = self.xp
        zero = self.out == 0
        return super().backward(xp.where(zero, 0, g / (2 * xp.where(zero, 1, self.out))))


class Max(Function):
    """max (or, with `smallest`, min) over one dim, or over all elements when dim is None."""

    saves_inputs = False

    def forward(self, x, dim, keepdim, smallest=False):
        xp = self.xp
        self.x_shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if dim is None:
            out = x.min() if smallest else x.max()
            self.winners = x == out if out == out else xp.isnan(x)  # every element that ties for the top (nan wins)
            return xp.asarray(out)
        self.indices = (x.argmin if smallest else x.argmax)(axis=dim, keepdims=True)
        out = xp.take_along_axis(x, self.indices, axis=dim)
        return out if keepdim else out.squeeze(dim)

    def backward(self, g):
        """out = max_i x_i = x_k for the winning element k:  d out/dx_i = 1 for i = k, 0 elsewhere,
        so the whole of g goes to the winner. Along a dim the winner is `indices` (the first
        of equal values, as argmax picks, or the first nan); over all elements, ties share g equally,
        as torch does (a nan beats every number, and nans tie)."""
        xp = self.xp
        if self.dim is None:
            return (g / int(self.winners.sum()) * self.winners,)
        dim = self.dim
        g = g if self.keepdim else xp.expand_dims(g, dim)
        positions = xp.arange(self.x_shape[dim]).reshape([-1 if d == dim else 1 for d in range(len(self.x_shape))])
        return (xp.where(positions == self.indices, g, 0),)
