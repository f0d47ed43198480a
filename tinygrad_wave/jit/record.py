"""Recording one eager call of a captured function: a Watcher (watch.py) that turns what
the engine tells it into named events, every array named by where it came from.

A Ref names an array: kind "in" (argument `index`), "op" (the output of event
`index`), "leaf" (a tensor from outside the call: a parameter, a buffer, or a
constant made inside it), "array" (an array from outside, in an op's options);
`tensor` says that the place it stands for (an option, the result) holds a tensor
of that array rather than the array itself.
What the recording cannot see repeated by a replay raises CaptureError here, at
the line that does it.
"""
import gc
import random
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import autograd, backend, watch
from ..tensor import Tensor


class CaptureError(RuntimeError):
    """The function does something a replay could not repeat faithfully."""


class Ref(NamedTuple):
    kind: str
    index: int
    tensor: bool = False


# --- the events: compared between the first two recordings, so each holds values
# (classes, refs, shapes), never arrays; what a replay needs besides is kept uncompared

class Event:
    """What one recorded event is; each kind below is a frozen dataclass of its fields."""
    what = ""  # how CaptureError describes it: a format string of its fields

    def describe(self):
        return self.what.format(**vars(self))


@dataclass(frozen=True)
class OpApplied(Event):
    op: type
    inputs: tuple  # a Ref per input
    options: dict  # the options, their tensors and arrays as refs
    needs_grad: tuple
    in_shapes: tuple
    xp: Any
    out_shape: tuple
    out_dtype: str
    recorded_options: dict = field(compare=False)  # the options as they were (for the op's replay check)

    def describe(self):
        return f"{self.op.__name__}{self.in_shapes}"


class GradRoute(NamedTuple):
    """Where an op's gradient for input `k` goes: the out_grad of an op (Ref "op"), or a leaf's .grad."""
    k: int
    target: Ref
    dtype: str


class NodeRoutes(NamedTuple):
    op: int  # the event index of the op
    routes: tuple  # a GradRoute per input that needs a gradient


@dataclass(frozen=True)
class BackwardWalked(Event):
    root: int  # the event index of the op that made the root
    grad: Any  # d loss / d root, as a ref
    order: tuple  # NodeRoutes in the walk's order
    retain_graph: bool
    what = "backward from op {root}"


@dataclass(frozen=True)
class GradCleared(Event):
    leaf: Ref
    what = "a .grad = None"


@dataclass(frozen=True)
class ObjectEvent(Event):
    """Something done to a module or an optimiser, named by id (the same object in both recordings)."""
    obj_id: int
    name: str


@dataclass(frozen=True)
class MethodCalled(ObjectEvent):
    args: tuple
    what = "a call of {name}()"


@dataclass(frozen=True)
class AttributeSet(ObjectEvent):
    value: Any  # a number, a string, a bool or None: what a replay can set again
    what = "an assignment of .{name} = {value!r}"


@dataclass(frozen=True)
class ArrayChanged(Event):
    """`target[index] = value` or `target how value`, in place, of an array this call made or was given."""
    target: Ref
    how: str
    index: Any  # basic: ints, slices, None, Ellipsis
    value: Ref
    what = "an in-place {how} of {target}"


SETTABLE = (bool, int, float, str, type(None))


def refused_in_place(t, how):
    """The CaptureError for an in-place change a replay would not repeat."""
    return CaptureError(f"the captured function changes a tensor of shape {t.shape} in place ({how}): a replay "
                        "repeats the ops, attribute assignments and the optimiser's calls, and in-place changes "
                        "only of tensors that the call's ops made, or that it was given, where no gradient is "
                        "recorded. Update parameters with an optimiser from tinygrad_wave.optim (weight_decay= "
                        "for weight decay), and clip or change gradients outside the captured function")


class Recorder(watch.Watcher):
    """What one eager call did (`events`), every array named by a Ref."""

    def __init__(self, args):
        self.args, self.thread = args, threading.get_ident()
        self.refs, self.keep = {}, []  # id(array) -> Ref; keep: all named objects, alive so ids stay unique
        self.leaves, self.outside, self.leaf_ids, self.objects = [], [], {}, {}
        self.events, self.nodes, self.user = [], {}, {}  # user: Ref -> the op that first used it
        self.modes, self.set_inside = {}, set()  # id(module) -> (module, training) at its first call
        self.parameter_bytes = {}  # leaf index -> its values' bytes, for the leaves that require grad
        self.made = []  # weak references to the tensors the ops made
        for k, a in enumerate(args):
            if isinstance(a, Tensor) or backend.is_array(a):
                self._name(a._data if isinstance(a, Tensor) else a, Ref("in", k))

    def _name(self, array, ref):
        self.refs.setdefault(id(array), ref)
        self.keep.append(array)
        return ref

    def run(self, fn):
        randomness = global_random_states()
        with watch.watching(self):
            result = fn(*self.args)
        if global_random_states() != randomness:
            raise CaptureError("the captured function drew from Python's `random` or NumPy's global "
                               "`numpy.random` (a branch on random.random(), np.random.rand()): a replay would "
                               "follow the recorded draws forever. Draw outside and pass the result in")
        self._check_parameters("the captured function")
        self._refuse_kept_tensors(result)
        self.result = self._template(result, "the result")
        returned = result if isinstance(result, (tuple, list)) else (result,)
        # returned tensors that have a graph: the walk from each (None: backward already freed it)
        self.graphs = {self.refs[id(t._data)]: self._whole_graph(t.grad_fn)
                       for t in returned if isinstance(t, Tensor) and t.grad_fn is not None}
        return result

    def _whole_graph(self, root):
        """The walk from a returned tensor's node, or None where backward freed the graph (all of
        it, or the part below a last op such as `loss * 2`): a backward after the call raises then."""
        try:
            return self._routes(root)
        except CaptureError:
            raise
        except RuntimeError:  # topological_order's "already freed"
            return None

    def _refuse_kept_tensors(self, result):
        """Raise if a tensor the call computed is kept in a list, set or dict (losses.append(loss),
        a global): a replay runs no Python, so the list would stop growing. A layer's .out, kept
        for looking at, is documented as the eager call's."""
        alive = [t for t in (ref() for ref in self.made) if t is not None]
        for holder in gc.get_referrers(*alive) if alive else ():
            is_a_layers_out = isinstance(holder, dict) and any(holder.get("out") is t for t in alive)
            if holder is result or holder is alive or is_a_layers_out:
                continue
            if isinstance(holder, (list, set, dict)):
                raise CaptureError(f"the captured function keeps a tensor it computed in a {type(holder).__name__} "
                                   "(losses.append(loss), a global): a replay runs no Python, so it would stop "
                                   "growing. Return the tensor and keep it after the call")

    def _ours(self):
        return threading.get_ident() == self.thread

    def tensor(self, t, user):
        """The Ref of a tensor's array: an argument's, an op's, or a leaf's."""
        ref = self.refs.get(id(t._data))
        if ref is None:
            return self.leaf(t, user)
        if ref.kind == "in" and t._requires_grad and t.grad_fn is None and t is not self.args[ref.index]:
            raise CaptureError(f"argument {ref.index} of the captured function is the array of a tensor that "
                               f"requires grad (shape {t.shape}, used by {user}), as W.detach() is W's: a replay "
                               "would take every use of that tensor for the argument. Pass a .clone()")
        return ref

    def leaf(self, t, user):
        j = self.leaf_ids.get(id(t))
        if j is None:
            j = self.leaf_ids[id(t)] = len(self.leaves)
            self.leaves.append(t)
            self.keep.append(t)
            self.user[Ref("leaf", j)] = user
            self._name(t._data, Ref("leaf", j))
            if t._requires_grad:
                self.parameter_bytes[j] = backend.to_host(t._data).tobytes()
        return Ref("leaf", j)

    def _check_parameters(self, where):
        """Raise if a parameter's values changed since it was last seen, other than by the ops
        or a method marked @watch.one_call: a replay would not repeat the change."""
        for j, values in self.parameter_bytes.items():
            t = self.leaves[j]
            if backend.to_host(t._data).tobytes() != values:
                raise CaptureError(f"{where} changed the values of a parameter of shape {t.shape} outside the "
                                   "engine (its array written directly, as an optimiser's step() without "
                                   "@watch.one_call does): a replay would not repeat it and the weights would "
                                   "stop changing. Mark such a method @watch.one_call, or use tinygrad_wave.optim")

    def _remember_parameters(self):
        for j in self.parameter_bytes:
            self.parameter_bytes[j] = backend.to_host(self.leaves[j]._data).tobytes()

    def _template(self, value, user):
        """`value` (an op's options, a result) with its tensors and arrays as refs."""
        if isinstance(value, Tensor):
            return self.tensor(value, user)._replace(tensor=True)
        if backend.is_array(value):
            ref = self.refs.get(id(value))
            if ref is None:
                ref = self._name(value, Ref("array", len(self.outside)))
                self.outside.append(value)
                self.user[ref] = user
            return ref
        if isinstance(value, (tuple, list)):
            return type(value)(self._template(v, user) for v in value)
        if isinstance(value, dict):
            return {k: self._template(v, user) for k, v in value.items()}
        if value is None or isinstance(value, (bool, int, float, str, slice, type(...))) or hasattr(value, "dtype"):
            return value  # (numpy scalars and dtypes have a dtype)
        raise CaptureError(f"{user} holds a {type(value).__name__}: a capture understands tensors, "
                           "arrays, numbers and tuples of them")

    # --- what the engine tells a watcher (watch.Watcher)

    def op_applied(self, node, inputs, options, out):
        if not self._ours():
            return
        i, name = len(self.events), node.name
        self.events.append(OpApplied(type(node), tuple(self.tensor(t, name) for t in inputs),
                                     self._template(options, name), node.needs_grad,
                                     tuple(t.shape for t in inputs), node.xp, out.shape, out.dtype.str, options))
        self.nodes[id(node)] = i
        self.keep.append(node)
        self.made.append(weakref.ref(out))
        self._name(out._data, Ref("op", i))

    def backward_walked(self, root, grad, retain_graph):
        if not self._ours():
            return
        if root.grad_fn is None or id(root.grad_fn) not in self.nodes:
            raise CaptureError("backward() inside the captured function starts from a tensor the function "
                               "did not compute: compute the loss inside it")
        for node in autograd.topological_order(root.grad_fn):
            if id(node) not in self.nodes:
                raise CaptureError(f"backward() reaches {node.name}, computed before the captured function "
                                   "was called: a replay could not redo it. Compute everything inside")
        self.events.append(BackwardWalked(self.nodes[id(root.grad_fn)], self._template(grad, "backward"),
                                          self._routes(root.grad_fn), retain_graph))

    def _routes(self, root):
        """The walk from node `root` over the ops of this call, in the walk's order: for each op,
        where the gradient of each input that needs one goes (an op of this call; else the
        input's .grad, or, for a graph the call returns, the node of the tensor from outside)."""
        order = []
        for node in autograd.topological_order(root):
            if id(node) not in self.nodes:
                continue  # made before the call: reached through an argument or a tensor from outside
            if node.retained is not None:
                raise CaptureError("retain_grad() inside a captured function: a replay makes no tensors to "
                                   "keep gradients in. Inspect intermediate gradients eagerly")
            routes = tuple(GradRoute(k, Ref("op", self.nodes[id(parent)]) if id(parent) in self.nodes
                                     else self._grad_target(t), t.dtype.str)
                           for k, (t, parent, needs) in enumerate(zip(node.inputs, node.parents, node.needs_grad))
                           if needs)
            order.append(NodeRoutes(self.nodes[id(node)], routes))
        return tuple(order)

    def _grad_target(self, t):
        if isinstance(t, autograd.Intermediate):  # made by an op before the call: an argument, or freed
            t = t.tensor()
            if t is None:
                raise CaptureError("the captured function's graph reaches a tensor computed before the call and "
                                   "no longer held: pass it in as an argument")
        k = next((k for k, a in enumerate(self.args) if a is t), None)
        return Ref("in", k) if k is not None else self.leaf(t, "backward")

    def grad_set(self, t, array):
        if not self._ours():
            return
        if array is not None:
            raise CaptureError("the captured function assigns an array to .grad: only `.grad = None` "
                               "(zero_grad) can be replayed")
        self.events.append(GradCleared(self.leaf(t, "zero_grad")))

    def tensor_written(self, t, how):
        if not self._ours():
            return
        if how == "requires_grad":
            raise CaptureError(f"the captured function sets requires_grad of a tensor of shape {t.shape}: a "
                               "replay does not repeat it. Set it before the call (a change between calls is "
                               "caught, and .reset() captures again)")
        raise refused_in_place(t, how)

    def array_changed(self, t, how, index, value):
        if not self._ours():
            return
        if not self._made_or_given(t._data):  # a parameter's, a buffer's or a gradient's memory
            raise refused_in_place(t, how)
        parts = index if type(index) is tuple else (index,)
        if not all(part is None or isinstance(part, (int, slice, type(...))) for part in parts):
            raise CaptureError(f"the captured function writes into a tensor in place at an index of tensors or "
                               f"arrays ({how}): a replay repeats a write only at ints and slices")
        value = self.tensor(value, f"an in-place {how}")
        self.events.append(ArrayChanged(self.refs[id(t._data)], how, index, value))

    def _made_or_given(self, array):
        """Whether `array` is an argument's or an op's of this call, and so is the memory it views
        (not a parameter's, a buffer's or a gradient's, which a replay would write at capture's)."""
        ref = self.refs.get(id(array))
        owner = array
        while owner.base is not None:
            owner = owner.base
        owner_ref = self.refs.get(id(owner), ref)  # (memory no one else names is the op's own)
        return ref is not None and ref.kind in ("in", "op") and owner_ref.kind in ("in", "op")

    def array_copied(self, array, copy):
        """Tensor(array) copied an argument: the copy holds the argument's values at every call."""
        ref = self.refs.get(id(array))
        if self._ours() and ref is not None and ref.kind == "in":
            self._name(copy, ref)

    def tensor_read(self, t, how):
        if not self._ours():
            return
        if how == ".data":
            ref = self.refs.get(id(t._data))
            if ref is None or ref.kind != "op":  # a parameter's, an argument's: the same memory at every call
                return
            raise CaptureError(".data inside the captured function, of a tensor it computed (a loss.data kept "
                               "in a log, a branch on it): a replay makes no such tensor, so a log would stop "
                               "growing and a branch would be frozen. Return the tensor and read it after the call")
        raise CaptureError(f"{how} inside the captured function reads a value into Python, which could "
                           "decide what runs next; a replay would not follow it. Read the returned "
                           "loss after the call instead")

    def host_randomness_drawn(self, what):
        if self._ours():
            raise CaptureError(f"the captured function drew host randomness ({what}: dropout, randn, randint, "
                               "from the global random generator or a private one): a replay would reuse the "
                               "same draws. Draw outside and pass the result in, or run eagerly")

    def attribute_set(self, obj, name, value):
        if not self._ours() or name == "out":  # a layer's last output, kept for looking at: the eager call's
            return
        if not isinstance(value, SETTABLE):
            raise CaptureError(f"the captured function sets {type(obj).__name__}.{name} to a "
                               f"{type(value).__name__}: a replay sets again only numbers, strings, booleans "
                               "and None. Keep it outside, or return it")
        self.objects[id(obj)] = obj
        self.set_inside.add((id(obj), name))
        self.events.append(AttributeSet(id(obj), name, value))

    def module_called(self, module, args):
        if self._ours() and id(module) not in self.modes and (id(module), "training") not in self.set_inside:
            self.modes[id(module)] = (module, module.training)  # checked before every replay
        return module.forward(*args)

    def method_called(self, method, obj, args):
        if not self._ours():
            return method(obj, *args)
        self.objects[id(obj)] = obj
        self.events.append(MethodCalled(id(obj), method.__name__, args))
        self._check_parameters(f"the captured function, before it called {method.__name__}(),")
        with watch.unwatched():  # the method's own work is not recorded: the replay calls it again
            result = method(obj, *args)
        self._remember_parameters()  # what the method changed, a replay changes by calling it again
        return result


def global_random_states():
    """The states of Python's and NumPy's global random generators, comparable with ==."""
    key, position, has_gauss, gauss = backend.namespace("cpu").random.get_state()[1:]
    return random.getstate(), key.tobytes(), position, has_gauss, gauss

