"""Shape and indexing: ops that move values without changing them, so each
backward moves g back to where the values came from.
"""
import itertools

from .. import backend
from ..autograd import Function
from .elementwise import unbroadcast


class Reshape(Function):
    saves_inputs = False
    returns_view = True

    def forward(self, x, shape):
        self.x_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        """out = x read in another shape: element i of out is element i of x (in row-major
        order), so dx = g reshaped back."""
        return (g.reshape(self.x_shape),)


class Transpose(Function):
    saves_inputs = False
    returns_view = True

    def forward(self, x, dim0, dim1):
        self.dims = dim0, dim1
        return self.xp.swapaxes(x, dim0, dim1)

    def backward(self, g):
        """out[..i..j..] = x[..j..i..]: swapping the two axes of g again undoes it."""
        return (self.xp.swapaxes(g, *self.dims),)


def _frozen(index):
    """An index whose arrays are copies: changed by the caller before backward,
    they would misroute the gradient."""
    if isinstance(index, tuple):
        return tuple(_frozen(i) for i in index)
    return index.copy() if backend.is_array(index) else index


def _picks_along_one_dim(part):
    """An index part that picks along exactly one dim (so part k of a tuple indexes dim k)."""
    if backend.is_array(part):
        return backend.is_integer(part.dtype)
    return isinstance(part, (int, slice)) and not isinstance(part, bool)


def _reads_each_element_once(index):
    """A basic index (slices, integers, ..., None): no element of x is read twice."""
    parts = index if type(index) is tuple else (index,)
    return all(part is None or part is Ellipsis or isinstance(part, slice)
               or (isinstance(part, int) and not isinstance(part, bool)) for part in parts)


class Index(Function):
    saves_inputs = False
    returns_view = True

    @classmethod
    def replay_check(cls, option, options, in_shapes):
        """Integer arrays from the arguments, each within its dim, as Embedding checks them: a
        negative one (which NumPy reads from the end) fails, and eager mode then decides."""
        parts = options[option] if type(options[option]) is tuple else (options[option],)
        dims = in_shapes[0]
        if option != "index" or len(parts) > len(dims) or not all(map(_picks_along_one_dim, parts)):
            return None

        def in_bounds(index):
            parts = index if type(index) is tuple else (index,)
            return all(backend.in_range(part, n) for part, n in zip(parts, dims) if backend.is_array(part))
        return in_bounds

    def forward(self, x, index):
        self.x_shape, self.index = x.shape, _frozen(index)
        out = x[index]
        if type(out) is not type(x):  # an all-integer index: NumPy gives a scalar copy, torch a 0-d view
            out = x[(*index, ...) if type(index) is tuple else (index, ...)]
        return out

    def backward(self, g):
        """out[k] = x[index[k]]:  d out[k]/dx[i] = 1 where index[k] = i, else 0,
        so dx[i] = sum of g[k] over every k with index[k] = i.

        A gather forward is a scatter-add backward. A row read twice (the same
        character twice in a context) must get both gradients added, which
        `dx[index] += g` would not do: it writes the repeated row once."""
        # a basic index (slices, integers: split's pieces, a time step) reads each element at most
        # once, so there plain assignment is the sum, without add.at's cost (40x on q, k, v's split)
        if _reads_each_element_once(self.index):
            dx = self.xp.zeros(self.x_shape, g.dtype)
            dx[self.index] = g
            return (dx,)
        return (backend.scatter_add(self.xp, self.x_shape, self.index, g),)


class Cat(Function):
    saves_inputs = False

    def forward(self, *arrays, dim):
        self.dim, self.sizes = dim, [a.shape[dim] for a in arrays]
        return self.xp.concatenate(arrays, axis=dim)

    def backward(self, g):
        """out = [x_1, x_2, ...] side by side along dim: each element of out is one element
        of one input, so each input's gradient is its own stretch of g."""
        ends = list(itertools.accumulate(self.sizes))
        return tuple(self.xp.split(g, ends[:-1], axis=self.dim))


class SetItem(Function):
    """out = x with out[index] = value: item assignment on a tensor in the graph."""
    saves_inputs = False

    def forward(self, x, value, index):
        self.index, self.value_shape = _frozen(index), value.shape
        out = x.copy()
        out[index] = value
        return out

    def backward(self, g):
        """out = x outside the indexed region and value (broadcast) inside it:
            d out/dx = 1 outside the region, 0 inside (x's old values there are gone),
            d out[index]/d value = 1, summed over the copies broadcasting made,
        so dx = g with the region set to 0 and dvalue = unbroadcast(g[index])."""
        dx = g.copy()
        dx[self.index] = 0
        return dx, unbroadcast(g[self.index], self.value_shape)


class ViewWrite(Function):
    """out = base with the region a view reads replaced by that view's new values: what an
    in-place change of a view (`v = x[0]; v += 1`) does to its base."""
    saves_inputs = False

    def forward(self, base, view_values, view):
        self.view_op, self.view_options = view
        return base  # the change was made through the view: the memory already holds it

    def _view(self, array):
        """`array` read the way the view reads its base (a view of it: writable)."""
        op = self.view_op()
        op.xp = self.xp
        return op.forward(array, **self.view_options)

    def backward(self, g):
        """Inside the view's region out is the view's new value, elsewhere the old base:
        dbase = g with the region set to 0, dview = g read through the view."""
        dbase = g.copy()
        self._view(dbase)[...] = 0
        return dbase, self._view(g)


class Expand(Function):
    """out = x repeated along its dims of size 1 (and along new leading dims): torch's expand,
    a read-only view, as NumPy's broadcast_to gives it."""
    saves_inputs = False
    returns_view = True

    def forward(self, x, shape):
        self.x_shape = x.shape
        return self.xp.broadcast_to(x, shape)

    def backward(self, g):
        """Each element of x is every one of its copies in out, so d out/dx sums over them:
        dx = g summed over the new dims and over the dims that were 1 (unbroadcast)."""
        return (unbroadcast(g, self.x_shape),)


class Roll(Function):
    """out = x shifted along `dims` by `shifts`, the elements pushed off one end coming back
    at the other (dims=None: along x read flat)."""
    saves_inputs = False

    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return self.xp.roll(x, shifts, axis=dims)

    def backward(self, g):
        """out[i] = x[i - shift] (modulo the dim's size): a permutation of x, each element moved
        once, so dx[j] = g[j + shift]: g rolled back by -shift."""
        back = -self.shifts if self.dims is None else tuple(-shift for shift in self.shifts)
        return (self.xp.roll(g, back, axis=self.dims),)


class TakeAlongDim(Function):
    """out = x's elements at `indices` along `dim` (torch's take_along_dim, NumPy's
    take_along_axis): the values topk picks."""
    saves_inputs = False

    def forward(self, x, indices, dim):
        self.x_shape, self.indices, self.dim = x.shape, indices.copy(), dim
        return self.xp.take_along_axis(x, indices, axis=dim)

    def backward(self, g):
        """out[..., j, ...] = x[..., indices[..., j, ...], ...] along dim: each element of out is one
        element of x, so dx is zeros with g added where each came from (added: an element taken
        twice gets both). The index of that scatter is `indices` along dim and each element's
        own position along every other dim."""
        ndim = self.indices.ndim
        place = tuple(self.indices if d == self.dim else
                      self.xp.arange(n).reshape((n,) + (1,) * (ndim - 1 - d)) for d, n in enumerate(self.indices.shape))
        return (backend.scatter_add(self.xp, self.x_shape, place, g),)
