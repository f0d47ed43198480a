"""The seam for whatever watches the engine run (chainer's FunctionHook is the model).

The core (autograd.py, tensor.py, inplace.py, optim.py, nn/, makemore_layers.py, random.py) tells
the active Watcher what it does, through the functions below, and knows nothing
about who listens: the jit records a step through it (tinygrad_wave/jit), the
teaching tools trace shapes through it (tinygrad_wave/teach). One watcher at a
time is active, installed with `watching`:

    with watch.watching(MyWatcher()):
        loss = model(x)

With none installed each costs one `is None` test. A Watcher's methods
do nothing by default, so a watcher overrides only what it wants to see.
"""
import functools
import inspect
from contextlib import contextmanager

watcher = None  # the active Watcher; the core tests it against None before telling it anything


class Watcher:
    """What the engine tells a watcher. Each method does nothing by default."""

    def op_applied(self, node, inputs, options, out):
        """An op (Function subclass) ran: its node (recorded in the graph or not), input
        tensors, keyword options and output tensor."""

    def backward_walked(self, root, grad, retain_graph):
        """A backward walk is about to start from tensor `root` with d loss / d root `grad`."""

    def tensor_read(self, tensor, how):
        """A tensor's values left the engine for Python (`how`: '.item()', '.numpy()', '.data', ...)."""

    def tensor_written(self, tensor, how):
        """A tensor's data is about to change outside the ops (`.data = `, requires_grad, an
        in-place change that the graph records)."""

    def array_changed(self, tensor, how, index, value):
        """A tensor is about to change in place where the graph records nothing (no gradient is
        involved): `tensor[index] = value` (how: "item assignment") or `tensor how value` ("+=", ...)."""

    def grad_set(self, tensor, value):
        """`tensor.grad = value` (None: zero_grad) is about to happen."""

    def array_copied(self, array, copy):
        """Tensor(array) copied a caller's array into a new one."""

    def host_randomness_drawn(self, what):
        """Random numbers were drawn on the host (from the global generator or a private one)."""

    def attribute_set(self, obj, name, value):
        """An attribute of a module or an optimiser (a `Stateful`) is about to be set."""

    def module_called(self, module, args):
        """A module is called: run its forward on args and return the output (a watcher
        may look before and after it)."""
        return module.forward(*args)

    def method_called(self, method, obj, args):
        """A method marked `@one_call` (an optimiser's step, zero_grad) is called: run it and
        return its result. A watcher may see it as one event instead of the work inside."""
        return method(obj, *args)


@contextmanager
def watching(new):
    """Make `new` the active watcher inside the block; the one before comes back after."""
    global watcher
    previous, watcher = watcher, new
    try:
        yield new
    finally:
        watcher = previous


@contextmanager
def unwatched():
    """No watcher inside the block (a watcher's own work, which it must not be told of)."""
    with watching(None):
        yield


# --- telling the watcher: one function per event, named as its Watcher method (the hot
# ones, Function.apply and the walk, test `watcher` inline to spare a call per op)

def tensor_read(tensor, how):
    if watcher is not None:
        watcher.tensor_read(tensor, how)


def tensor_written(tensor, how):
    if watcher is not None:
        watcher.tensor_written(tensor, how)


def array_changed(tensor, how, index, value):
    if watcher is not None:
        watcher.array_changed(tensor, how, index, value)


def grad_set(tensor, value):
    if watcher is not None:
        watcher.grad_set(tensor, value)


def array_copied(array, copy):
    if watcher is not None:
        watcher.array_copied(array, copy)


def host_randomness_drawn(what):
    """Called before every host draw (random.py's)."""
    if watcher is not None:
        watcher.host_randomness_drawn(what)


def one_call(method):
    """Mark a method that watchers see as one call (`method_called`), not as the work inside:
    the jit replays an optimiser's step by calling it again on the state of that moment."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def called(obj, *args, **kwargs):
        if kwargs:  # zero_grad(set_to_none=True): passed on by position, the one form a watcher is told
            args = signature.bind(obj, *args, **kwargs).args[1:]
        if watcher is None:
            return method(obj, *args)
        return watcher.method_called(method, obj, args)
    return called


class Stateful:
    """A base for objects whose Python attributes are state a step depends on (modules,
    optimisers): setting one tells the watcher."""
    __slots__ = ()

    def __setattr__(self, name, value):
        if watcher is not None:
            watcher.attribute_set(self, name, value)
        object.__setattr__(self, name, value)
