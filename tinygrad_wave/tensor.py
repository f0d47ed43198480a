"""Tensor: the user's object. An array (`data`), its gradient (`grad`), the
node that made it (`grad_fn`, None for a leaf), and, as in torch, both
`data` and `grad` are Tensors themselves, outside the graph. The math a
tensor offers (operator sugar, reductions, shapes) is in methods.py, the
in-place rules in inplace.py, and backward itself in autograd.py.
"""
import operator
import weakref

from . import backend, inplace, ops, watch
from .autograd import walk
from .methods import TensorMethods


class Tensor(TensorMethods):
    __slots__ = ("_data", "_grad", "grad_fn", "_requires_grad", "device", "_version", "_view_of", "_views",
                 "__weakref__")
    __array_ufunc__ = None  # `ndarray + Tensor` must call Tensor.__radd__, not loop over elements
    __hash__ = object.__hash__  # == compares elements (methods.py), yet a tensor can still key a dict, as in torch

    def __init__(self, data, requires_grad=False, dtype=None, device="cpu"):
        if isinstance(data, Tensor):
            data = data._data
        array = backend.to_array(data, backend.as_dtype(dtype), backend.check_device(device))
        # a copy, as torch.tensor() makes: training must not change the caller's array
        self._data = array.copy() if array is data else array
        if array is data:  # (a captured step: the jit follows the copy)
            watch.array_copied(data, self._data)
        self.device = device
        self._grad = self.grad_fn = self._view_of = self._views = None
        self._version = [0]
        self._requires_grad = False
        self._set_requires_grad(requires_grad)

    @classmethod
    def _wrap(cls, data, device, node, version=None):
        """An array the engine made (an op's output, a gradient, an index, .data's view) as a
        tensor, without Tensor()'s checks and copy: `node` is the op that made it (None: outside
        the graph), `version` the counter of the tensor whose memory it shares."""
        t = cls.__new__(cls)
        t._data, t.device, t._grad, t.grad_fn, t._view_of, t._views = data, device, None, node, None, None
        t._version = version or [0]
        t._requires_grad = node is not None
        return t

    # --- attributes ---------------------------------------------------------------

    @property
    def data(self):
        """The same memory as a Tensor outside the graph, as torch's .data: changing it in
        place is not recorded. (Unlike torch it shares the version counter, so a change
        through it that a pending backward would read is an error, not a wrong gradient.)"""
        watch.tensor_read(self, ".data")
        return Tensor._wrap(self._data, self.device, None, self._version)

    @data.setter
    def data(self, value):
        """Takes the new value's dtype and shape, as torch's .data assignment does."""
        array = value._data if isinstance(value, Tensor) else value
        if array is self._data:  # `t.data -= x`: the change was made in place, through the getter's tensor
            return
        watch.tensor_written(self, ".data assignment")
        array = backend.to_array(array, device=self.device)
        if self._requires_grad and not backend.is_floating(array.dtype):
            raise TypeError(f"cannot assign {array.dtype} data to a tensor that requires grad")
        self._replace(array)

    # --- changing the values: each change counted in the version ----------------------
    # A node that saved a tensor's values refuses its backward once they changed
    # (Function.check_versions); a view shares the counter, so it sees the change too.

    def _write(self, values, index=Ellipsis):
        """Copy `values` into this tensor's memory (at `index`): views and holders keep seeing it."""
        self._data[index] = values
        self._count_change()

    def _replace(self, array):
        """Make `array` this tensor's values (a new dtype, device or memory)."""
        self._data = array
        self._count_change()

    def _count_change(self):
        """Count one change of the values; called alone after an update made in place
        on self._data (`p._data -= lr * g`), which _write would copy for nothing."""
        self._version[0] += 1

    @property
    def grad(self):
        """d loss / d self after backward: a Tensor outside the graph, or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        watch.grad_set(self, value)
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__module__}.{type(value).__name__}, as torch refuses too: "
                                "wrap it in tinygrad_wave.tensor(...)")
            if value.device != self.device:
                raise RuntimeError(f"assigned grad on {value.device} to a tensor on {self.device}")
            if value.shape != self.shape:
                raise ValueError(f"assigned grad of shape {value.shape} to a tensor of shape {self.shape}")
            if value.dtype != self.dtype:  # as torch: backward would add the two dtypes into a third
                raise TypeError(f"assigned grad of dtype {value.dtype} to a tensor of dtype {self.dtype}")
        self._grad = value

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        watch.tensor_written(self, "requires_grad")
        self._set_requires_grad(value)

    def _set_requires_grad(self, value):
        if self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be changed on a leaf tensor; "
                               "use .detach() for a tensor outside the graph")
        if value and not backend.is_floating(self.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, not {self.dtype}")
        self._requires_grad = bool(value)

    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    is_leaf = property(lambda self: self.grad_fn is None)
    xp = property(lambda self: backend.namespace(self.device))

    def numel(self):
        return self._data.size

    nelement = numel  # the name makemore uses

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        """Row by row along dim 0, as torch iterates (each row a tensor, in the graph)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        """torch's look: tensor([1.0000, 2.5000]), with grad_fn or requires_grad, and the
        dtype when it is not the default one of its kind."""
        body = backend.format_array(self._data, indent=len("tensor("))
        extra = "" if self.dtype in (backend.DEFAULT_FLOAT, "int64", "bool") else f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device={self.device!r}"
        extra += f", grad_fn={self.grad_fn!r}" if self.grad_fn else (", requires_grad=True" if self.requires_grad else "")
        return f"tensor({body}{extra})"

    # --- leaving and moving ---------------------------------------------------------

    # (each read is told to the watcher: a captured step refuses what Python could branch on)
    def numpy(self):
        """A host NumPy copy of the data."""
        watch.tensor_read(self, ".numpy()")
        return backend.to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t): the data, as a host array (matplotlib plots tensors through this)."""
        watch.tensor_read(self, "np.asarray(tensor)")
        host = backend.to_host(self._data)
        return host if dtype is None else host.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor of one element, not shape {self.shape}")
        watch.tensor_read(self, ".item()")
        return self._data.reshape(()).item()

    def tolist(self):
        watch.tensor_read(self, ".tolist()")
        return backend.to_host(self._data).tolist()

    # Python numbers from one-element tensors: '%.2f' % t, int(t), range(t), f'{t:.4f}'
    def __float__(self): return float(self._one("float"))
    def __int__(self): return int(self._one("int"))

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of {self.numel()} elements is ambiguous: "
                               "use .any() or .all()")
        return bool(self.item())

    def __index__(self):
        if not backend.is_integer(self.dtype):
            raise TypeError(f"only integer tensors of a single element can be used as an index, not {self.dtype}")
        return operator.index(self._one("an index"))

    def __format__(self, spec):
        """A 0-d tensor formats as its number (f'{loss:.4f}'); others as their repr, as in torch."""
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec) if spec else repr(self)

    def _one(self, what):
        if self.numel() != 1:
            raise RuntimeError(f"a tensor of {self.numel()} elements cannot be converted to {what}: "
                               "only one-element tensors can (index it, or reduce it with .sum() or .mean())")
        return self.item()

    def detach(self):
        """The same data (and version counter), outside the graph."""
        return Tensor._wrap(self._data, self.device, None, self._version)

    def to(self, *args, device=None, dtype=None):
        """A copy on another device or of another dtype (self when nothing changes), in the
        graph: its gradient flows back to this tensor. to("cuda"), to(torch.float64) and
        to("cuda", torch.float64), as in torch. An integer or bool dtype leaves the graph
        (no gradient flows through a rounding)."""
        device, dtype = backend.device_and_dtype(args, device, dtype)
        device = backend.check_device(device or self.device)
        dtype = backend.as_dtype(dtype) or self.dtype
        if device == self.device and dtype == self.dtype:
            return self
        if not backend.is_floating(dtype):
            return Tensor._wrap(backend.to_array(self._data, dtype, device), device, None)
        return ops.To.apply(self, dtype=dtype, device=device)

    def float(self): return self.to(dtype="float32")
    def double(self): return self.to(dtype="float64")
    def long(self): return self.to(dtype="int64")
    def int(self): return self.to(dtype="int32")
    def bool(self): return self.to(dtype="bool")

    def _converted(self, device=None, dtype=None):
        """(data, grad) as Module.to would set them, computed before anything changes."""
        dtype = backend.as_dtype(dtype)
        if dtype is not None and self.requires_grad and not backend.is_floating(dtype):
            raise ValueError(f"cannot cast a tensor that requires grad to {dtype}: it needs a float dtype")
        device = backend.check_device(device or self.device)
        data = backend.to_array(self._data, dtype, device)
        grad = None if self._grad is None else Tensor._wrap(
            backend.to_array(self._grad._data, data.dtype, device), device, None)
        return data, grad

    # --- gradients -------------------------------------------------------------------

    def backward(self, grad=None, retain_graph=False):
        """Fill .grad of every leaf that this tensor depends on with d self / d leaf,
        weighted by `grad` (d loss / d self; 1 for a one-element tensor). With
        retain_graph the graph is kept for another backward, which adds to .grad again."""
        for _ in walk(self, self._root_grad(grad), retain_graph):
            pass

    def _root_grad(self, grad):
        """d loss / d self as an array on self's device, checked; ones for a one-element tensor.
        (the start of backward, and of a backward taken one step at a time)"""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input of it has requires_grad=True")
        if grad is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward() on a non-scalar tensor of shape {self.shape} "
                                   "needs grad=, an array of that shape")
            grad = self.xp.ones(self._data.shape, self.dtype)
        else:
            grad = backend.to_array(grad._data if isinstance(grad, Tensor) else grad, self.dtype, self.device)
            if grad.shape != self._data.shape:
                raise ValueError(f"grad of shape {tuple(grad.shape)} does not match "
                                 f"the tensor's shape {self.shape}")
        return grad

    def retain_grad(self):
        """Keep d loss / d self in .grad after backward, though self is not a leaf
        (a leaf keeps it anyway)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("retain_grad() on a tensor that does not require grad")
            return
        self.grad_fn.retained = weakref.ref(self)

    def _accumulate(self, grad):
        """Sum the gradients of every backward call into .grad, as torch does: into the same
        tensor, so that a .grad kept from the last backward (or a buffer assigned to .grad)
        holds the sum. The sum is a new array: the one .grad held may also be a gradient the
        walk has yet to hand on (Add passes one array to both its inputs)."""
        if grad.dtype != self.dtype:
            grad = grad.astype(self.dtype)
        if self._grad is None:
            self._grad = Tensor._wrap(grad, self.device, None)
            return
        self._grad._replace(self._grad._data + grad)

    # --- views: a tensor that shares its memory with the one it was read from ----------

    def _add_view(self, view, op, options):
        """Remember that `view` (made by op from self) shares self's memory: an in-place
        change of either must reach the other's graph (inplace.py). Weakly, so views
        that are gone cost nothing."""
        view._view_of = (self, op, options)
        views = self._views
        if views is None:
            self._views = [weakref.ref(view)]
            return
        if len(views) >= 8:  # a parameter viewed at every step (W.T): forget the dead ones
            views[:] = [v for v in views if v() is not None]
        views.append(weakref.ref(view))

    # --- in place: torch's rules (inplace.py) --------------------------------------------

    def __iadd__(self, other): return inplace.arithmetic(self, "+=", other)
    def __isub__(self, other): return inplace.arithmetic(self, "-=", other)
    def __imul__(self, other): return inplace.arithmetic(self, "*=", other)
    def __itruediv__(self, other): return inplace.arithmetic(self, "/=", other)

    def __setitem__(self, index, value):
        inplace.set_item(self, self._index(index), value)

    # torch's named in-place methods (p.grad.zero_(), w.normal_() under no_grad): each returns self
    def add_(self, other, *, alpha=1): return inplace.arithmetic(self, "+=", other if alpha == 1 else other * alpha)
    def sub_(self, other, *, alpha=1): return inplace.arithmetic(self, "-=", other if alpha == 1 else other * alpha)
    def mul_(self, other): return inplace.arithmetic(self, "*=", other)
    def div_(self, other): return inplace.arithmetic(self, "/=", other)

    def clamp_(self, min=None, max=None):  # noqa: A002
        return self.fill_(self.clamp(min, max))

    def fill_(self, value):
        inplace.set_item(self, ..., value)
        return self

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src):
        """self's values from src, broadcast to self's shape and cast to its dtype (under no_grad
        for a parameter; in the graph, src gets the gradient of what it overwrote)."""
        return self.fill_(src)

    def softmax(self, dim):
        from .functional import softmax  # (functional.py imports this module)
        return softmax(self, dim)

    def log_softmax(self, dim):
        from .functional import log_softmax
        return log_softmax(self, dim)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        from .random import randn  # (random.py imports this module)
        return self.fill_(randn(self.shape, generator=generator, dtype=self.dtype, device=self.device) * std + mean)

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        from .random import rand
        return self.fill_(rand(self.shape, generator=generator, dtype=self.dtype, device=self.device) * (b - a) + a)
