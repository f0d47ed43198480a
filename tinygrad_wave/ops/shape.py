"""Shape and indexing: ops that move values without changing them, so each
backward moves g back to where the values came from.
"""
from .. import backend
from ..autograd import Function


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


class Index(Function):
    saves_inputs = False
    returns_view = True

    def forward(self, x, index):
        self.x_shape, self.index = x.shape, _frozen(index)
        return x[index]

    def backward(self, g):
        """out[k] = x[index[k]]:  d out[k]/dx[i] = 1 where index[k] = i, else 0,
        so dx[i] = sum of g[k] over every k with index[k] = i.

        A gather forward is a scatter-add backward. A row read twice (the same
        character twice in a context) must get both gradients added, which
        `dx[index] += g` would not do: it writes the repeated row once."""
        return (backend.scatter_add(self.xp, self.x_shape, self.index, g),)
