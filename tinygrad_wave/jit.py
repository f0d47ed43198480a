"""Capture a training step once, then replay its array work without the graph bookkeeping.

    step = jit.capture(train_step)       # or @jit.capture above `def train_step(xb, yb): ...`
    loss = step(xb, yb)                  # calls 1 and 2 run eagerly and are recorded; later calls replay

What is captured. While fn runs eagerly, every Function.apply is recorded in
order (the op's class, its options, and where each input array came from: an
argument of the call, an earlier op's output, or a tensor from outside such as
a parameter), and so is each backward walk (the nodes in the walk's order and
where each gradient goes), each `.grad = None` (zero_grad), and each call of a
method marked `@replayed_as_one_call` (the optimiser's step).

What is replayed. The same forward and backward methods of the same ops, on
the new arguments' arrays, in the same order, with the gradients summed in the
same order and copied where the walk copies them; then optimizer.step() itself.
No Tensor, node, topological sort or module call is made, so a replay is
bit-identical to the eager step: it is the same arithmetic on the same arrays.

Guarded on every call. Arguments of another shape, dtype or device (or another
Python value, or grad mode) are another signature: captured again, a few kept.
Indices and targets taken from the arguments are range-checked before the
replay; a bad one makes the call run eagerly, which raises eager's own error.
A parameter whose array was replaced (`.data = ...`, Module.to) or whose
requires_grad changed since capture raises CaptureError (`step.reset()`
captures again).

Refused with CaptureError, never replayed wrongly: reading a value inside fn
(.item(), .numpy(), bool(t): Python could branch on it), drawing from the
global random generator (dropout), changing a tensor's data outside the
optimiser, setting .grad to an array, retain_grad(), a backward that reaches
ops from before the call, and two recorded calls that differ (other ops or
shapes: data-dependent control flow; a tensor made inside fn whose values
differ between the calls).

Not seen, so frozen at capture: Python state that fn reads without tensors (a
layer's `training` flag: do not call a captured training step in eval mode; a
global), and an array computed outside the ops from the data that happened to
be equal on both recorded calls. optimizer.lr is read by optimizer.step()
itself, so changing it between calls works. Layers' `.out` keep the tensors of
the last eager call: replays make no tensors.

On a GPU a batch-32 step is bound by kernel launches, and a replay is a fixed
sequence of launches on arrays of fixed shapes: what a CUDA graph records. To
capture one replay under cupy's stream capture and launch it as one graph, the
batch must be copied into fixed input buffers (a graph replays fixed
addresses), the output arrays must stay put between steps (CuPy's memory pool
usually hands back the same blocks, a graph needs that guaranteed), and the range
checks, which read min and max back to the host, must run on the host's batch
indices before the launch.
"""
import functools
import threading
from collections import OrderedDict, namedtuple

from . import autograd, backend
from .functional import CrossEntropy
from .ops import Index
from .random import default_generator
from .tensor import Tensor

# Where a recorded array (Ref) or tensor (TensorRef) came from: kind "in" (argument
# `index`), "op" (the output of event `index`), "leaf" (a tensor from outside the
# call: a parameter, a buffer, or a constant made inside it), "array" (an array
# from outside, in an op's options). _Slot: a place in a replay's list of arrays.
Ref = namedtuple("Ref", "kind index")
TensorRef = namedtuple("TensorRef", "kind index")
_Slot = namedtuple("_Slot", "index tensor")


class CaptureError(RuntimeError):
    """The function does something a replay could not repeat faithfully."""


def capture(fn=None, *, cache_size=4):
    """Wrap `fn` (positional arguments: tensors, arrays, hashable values) for capture
    and replay. Usable as `@capture` or `@capture(cache_size=...)`: that many
    signatures keep their replay, the least recently captured goes first."""
    if fn is None:
        return functools.partial(capture, cache_size=cache_size)
    return Captured(fn, cache_size)


def replayed_as_one_call(method):
    """Mark a method (an optimiser's step) that a capture records as one call, and
    replays by calling it again: its own Python runs, on the state of that moment."""
    @functools.wraps(method)
    def recorded(obj, *args):
        recorder = autograd._recorder
        if recorder is None:
            return method(obj, *args)
        return recorder.called(method, obj, args)
    return recorded


class Captured:
    """fn, with its captured replays by argument signature."""

    def __init__(self, fn, cache_size):
        functools.update_wrapper(self, fn)
        self.fn, self.cache_size = fn, cache_size
        self.replays, self.recorded = OrderedDict(), OrderedDict()  # signature -> _Replay; -> its first recording
        self.replayed = self.eager = 0  # how many calls ran each way

    def reset(self):
        """Forget every capture: the next two calls record afresh."""
        self.replays.clear()
        self.recorded.clear()

    def __call__(self, *args):
        if autograd._recorder is not None:  # inside another capture: that one records our ops
            return self.fn(*args)
        key = _signature(args)
        replay = self.replays.get(key)
        if replay is not None:
            result = replay(args)
            if result is not _EAGER:
                self.replayed += 1
                return result
        self.eager += 1
        if replay is not None:  # a guard failed: eager mode raises its own error (or is right)
            return self.fn(*args)
        recorder = _Recorder(args)
        result = recorder.run(self.fn)
        first = self.recorded.pop(key, None)
        if first is None:
            self.recorded[key] = recorder
        else:
            self.replays[key] = _Replay(first, recorder)
        for kept in (self.recorded, self.replays):  # new shapes at every call must not pile up
            if len(kept) > self.cache_size:
                kept.popitem(last=False)
        return result


def _signature(args):
    key = [autograd.is_grad_enabled()]
    for a in args:
        if isinstance(a, Tensor):
            key.append((a._data.shape, a._data.dtype, a.device, a._requires_grad))
        elif backend.is_array(a):
            key.append((a.shape, a.dtype, type(a)))  # (the type: numpy or cupy, the device)
        else:
            try:
                hash(a)
            except TypeError:
                raise TypeError(f"a captured function takes tensors, arrays and hashable values, "
                                f"not {type(a).__name__}") from None
            key.append(("value", type(a), a))
    return tuple(key)


_EAGER = object()  # what a replay returns when a guard sends the call to eager mode


# --- recording ----------------------------------------------------------------------------

class _Recorder:
    """What one eager call did (`events`), every array named by a Ref."""

    def __init__(self, args):
        self.args, self.thread = args, threading.get_ident()
        self.refs, self.keep = {}, []  # id(array) -> Ref; keep: all named objects, alive so ids stay unique
        self.leaves, self.outside, self.leaf_ids, self.objects = [], [], {}, {}
        self.events, self.nodes, self.user = [], {}, {}  # user: Ref -> the op that first used it
        for k, a in enumerate(args):
            if isinstance(a, Tensor) or backend.is_array(a):
                self._name(a._data if isinstance(a, Tensor) else a, Ref("in", k))

    def _name(self, array, ref):
        self.refs.setdefault(id(array), ref)
        self.keep.append(array)
        return ref

    def run(self, fn):
        rng_before = default_generator.state_dict()
        autograd._recorder = self
        try:
            result = fn(*self.args)
        finally:
            autograd._recorder = None
        if default_generator.state_dict() != rng_before:
            raise CaptureError("the captured function drew from the global random generator (dropout, "
                               "randn, randint): a replay would reuse the same draws. Draw outside and pass "
                               "the result in, or run eagerly")
        self.result = self._template(result, "the result")
        return result

    def _ours(self):
        return threading.get_ident() == self.thread

    def tensor(self, t, user):
        """The Ref of a tensor's array: an argument's, an op's, or a leaf's."""
        return self.refs.get(id(t._data)) or self.leaf(t, user)

    def leaf(self, t, user):
        j = self.leaf_ids.get(id(t))
        if j is None:
            j = self.leaf_ids[id(t)] = len(self.leaves)
            self.leaves.append(t)
            self.keep.append(t)
            self.user[Ref("leaf", j)] = user
            self._name(t._data, Ref("leaf", j))
        return Ref("leaf", j)

    def _template(self, value, user):
        """`value` (an op's options, a result) with its tensors and arrays as refs."""
        if isinstance(value, Tensor):
            return TensorRef(*self.tensor(value, user))
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

    # --- the hooks: autograd.Function.apply, autograd.walk, tensor.py, @replayed_as_one_call

    def applied(self, node, inputs, options, out):
        if not self._ours():
            return
        i, name = len(self.events), node.name
        self.events.append(("op", type(node), tuple(self.tensor(t, name) for t in inputs),
                            self._template(options, name), tuple(t._requires_grad for t in inputs),
                            tuple(t.shape for t in inputs), node.xp, out.shape, out.dtype.str))
        self.nodes[id(node)] = i
        self.keep.append(node)
        self._name(out._data, Ref("op", i))

    def walked(self, root, grad, retain_graph):
        if not self._ours():
            return
        if root.grad_fn is None or id(root.grad_fn) not in self.nodes:
            raise CaptureError("backward() inside the captured function starts from a tensor the function "
                               "did not compute: compute the loss inside it")
        nodes, order = autograd.topological_order(root.grad_fn), []
        for node in nodes:
            if id(node) not in self.nodes:
                raise CaptureError(f"backward() reaches {node.name}, computed before the captured function "
                                   "was called: a replay could not redo it. Compute everything inside")
            if node.retained is not None:
                raise CaptureError("retain_grad() inside a captured function: a replay makes no tensors to "
                                   "keep gradients in. Inspect intermediate gradients eagerly")
        for node in nodes:
            routes = tuple((k, Ref("op", self.nodes[id(parent)]) if parent is not None
                            else self._grad_target(t), t.dtype.str)
                           for k, (t, parent, needs) in enumerate(zip(node.inputs, node.parents, node.needs_grad))
                           if needs)
            order.append((self.nodes[id(node)], routes))
        self.events.append(("backward", self.nodes[id(root.grad_fn)], self._template(grad, "backward"),
                            tuple(order), retain_graph))

    def _grad_target(self, t):
        k = next((k for k, a in enumerate(self.args) if a is t), None)
        return Ref("in", k) if k is not None else self.leaf(t, "backward")

    def grad_set(self, t, array):
        if not self._ours():
            return
        if array is not None:
            raise CaptureError("the captured function assigns an array to .grad: only `.grad = None` "
                               "(zero_grad) can be replayed")
        self.events.append(("grad_none", self.leaf(t, "zero_grad")))

    def changed(self, t, what):
        if self._ours():
            raise CaptureError(f"the captured function changes a tensor of shape {t.shape} in place "
                               f"({what}): a replay repeats only the ops, zero_grad and optimizer.step(). "
                               "Update parameters with an optimiser from tinygrad_wave.optim")

    def copied(self, array, copy):
        """Tensor(array) copied an argument: the copy holds the argument's values at every call."""
        ref = self.refs.get(id(array))
        if self._ours() and ref is not None and ref.kind == "in":
            self._name(copy, ref)

    def read(self, t, what):
        if self._ours():
            raise CaptureError(f"{what} inside the captured function reads a value into Python, which could "
                               "decide what runs next; a replay would not follow it. Read the returned "
                               "loss after the call instead")

    def called(self, method, obj, args):
        if not self._ours():
            return method(obj, *args)
        self.objects[id(obj)] = obj
        self.events.append(("call", method.__name__, id(obj), args))
        autograd._recorder = None  # the method's own work is not recorded: the replay calls it again
        try:
            return method(obj, *args)
        finally:
            autograd._recorder = self


def _same(first, second):
    """Raise unless two recordings of the same signature did the same thing."""
    for i, (a, b) in enumerate(zip(first.events, second.events)):
        if a != b:
            raise CaptureError(f"the captured function did different things on its first two calls (event "
                               f"{i}: {_describe(a)} then {_describe(b)}): Python control flow that depends on "
                               "the data, or on state outside the arguments, cannot be replayed. Run it eagerly")
    if len(first.events) != len(second.events) or first.result != second.result:
        raise CaptureError("the captured function's first two calls differ in length or in what they "
                           "return: it cannot be replayed. Run it eagerly")


def _describe(event):
    return f"{event[1].__name__}{event[5]}" if event[0] == "op" else event[0]


def _constant(new, old, user):
    """`new` (made anew by each call) as a constant, if its value is the one of the first call."""
    if isinstance(new, Tensor) and new._requires_grad:
        raise CaptureError(f"a tensor that requires grad is made inside the captured function (used by "
                           f"{user}): a replay would leave it out. Make parameters outside")
    a, b = (x._data if isinstance(x, Tensor) else x for x in (new, old))
    if a.shape != b.shape or a.dtype != b.dtype or backend.to_host(a).tobytes() != backend.to_host(b).tobytes():
        raise CaptureError(f"a {a.dtype} array of shape {tuple(a.shape)} used by {user} is computed inside the "
                           "captured function outside the engine's ops, and its value changed between the first "
                           "two calls (random, or from the data): pass it in as an argument, or compute it "
                           "with tensor ops")
    return new


# --- replaying ----------------------------------------------------------------------------

class _Replay:
    """Two recordings that agree, compiled into steps over a list of arrays: the
    arguments', then one slot per event (an op's output), then arrays from outside."""

    def __init__(self, first, second):
        _same(first, second)
        self.recording, n_in = second, len(second.args)
        self.slots = {Ref("in", k): k for k in range(n_in)}
        self.slots.update((Ref("op", i), n_in + i) for i in range(len(second.events)))
        self.fixed = [None] * (n_in + len(second.events))
        self.persistent = []  # (tensor, its array, requires_grad) as captured: checked at every replay
        for kind, objects, earlier in (("leaf", second.leaves, first.leaves),
                                       ("array", second.outside, first.outside)):
            for j, (obj, old) in enumerate(zip(objects, earlier)):
                if obj is not old:
                    _constant(obj, old, second.user[Ref(kind, j)])
                elif kind == "leaf":
                    self.persistent.append((obj, obj._data, obj._requires_grad))
                self.slots[Ref(kind, j)] = len(self.fixed)
                self.fixed.append(obj._data if kind == "leaf" else obj)
        self.guards, self.nodes, self.steps = [], {}, []
        for i, event in enumerate(second.events):
            self.steps.append(getattr(self, "_compile_" + event[0])(i, *event[1:]))
        self.result = self._bind(second.result)
        del self.recording, self.slots, self.nodes  # the recordings' arrays can go

    def _bind(self, template):
        """A template with arguments' and ops' refs as _Slots, and everything else concrete."""
        if type(template) in (Ref, TensorRef):
            is_tensor, ref = type(template) is TensorRef, Ref(*template)
            if ref.kind in ("in", "op"):
                return _Slot(self.slots[ref], is_tensor)
            if ref.kind == "leaf" and is_tensor:
                return self.recording.leaves[ref.index]
            return self.fixed[self.slots[ref]]
        if isinstance(template, (tuple, list)):
            return type(template)(self._bind(v) for v in template)
        if isinstance(template, dict):
            return {k: self._bind(v) for k, v in template.items()}
        return template

    def _compile_op(self, i, cls, args, options, needs_grad, in_shapes, xp, out_shape, out_dtype):
        node = self.nodes[i] = cls.__new__(cls)
        node.xp, node.needs_grad = xp, needs_grad
        options = self._bind(options)
        dynamic = {k: v for k, v in options.items() if _has_slot(v)}
        for key, value in dynamic.items():
            self.guards.append(_guard(cls, key, value, options, in_shapes, self.recording))
        static = {k: v for k, v in options.items() if k not in dynamic}
        forward = node.forward
        if out_shape == ():  # NumPy gives a scalar for ops on 0-d arrays: Function.apply makes it an array
            forward = _as_array(forward, xp)
        return (0, forward, tuple(self.slots[Ref(*a)] for a in args), static, tuple(dynamic.items()),
                len(self.recording.args) + i)

    def _compile_grad_none(self, i, ref):
        return (1, self.recording.leaves[ref.index])

    def _compile_call(self, i, name, obj_id, args):
        return (2, self.recording.objects[obj_id], name, args)

    def _compile_backward(self, i, root, grad, order, retain_graph):
        plan = []
        for op, routes in order:
            backward = self.nodes[op].backward
            targets = tuple((k, ref.index if ref.kind == "op" else ref if ref.kind == "in"
                             else self.recording.leaves[ref.index], dtype) for k, ref, dtype in routes)
            plan.append((op, backward, targets))
        return (3, root, self._bind(grad), tuple(plan), retain_graph)

    def __call__(self, args):
        for t, array, requires_grad in self.persistent:
            if t._data is not array or t._requires_grad is not requires_grad:
                raise CaptureError(f"a tensor of shape {t.shape} that the captured function uses was replaced "
                                   "or changed (a new .data array, .to(), requires_grad) since the capture: "
                                   "call .reset() on the captured function to capture it again")
        values = self.fixed[:]
        for k, a in enumerate(args):
            values[k] = a._data if isinstance(a, Tensor) else a
        for guard in self.guards:
            if not guard(values):
                return _EAGER
        for step in self.steps:
            kind = step[0]
            if kind == 0:
                _, forward, arg_slots, options, dynamic, out = step
                if dynamic:
                    options = dict(options, **{k: _fill(v, values) for k, v in dynamic})
                values[out] = forward(*map(values.__getitem__, arg_slots), **options)
            elif kind == 1:
                step[1]._grad = None  # zero_grad
            elif kind == 2:  # looked up again: the call is whatever obj.step is now, as in eager mode
                getattr(step[1], step[2])(*step[3])
            else:
                _backward(step, values, args)
        return _fill(self.result, values)


def _backward(step, values, args):
    """autograd.walk's arithmetic, in its order, along the recorded routes."""
    _, root, root_grad, plan, retain_graph = step
    root_grad = _fill(root_grad, values)
    grads = {root: root_grad}  # op -> d loss / d its output, summed over its consumers so far
    given_away = {id(root_grad)}
    for op, backward, targets in plan:
        g = grads.pop(op, None)
        if g is None:
            continue
        grads_in = backward(g)
        for k, target, dtype in targets:
            g_in = grads_in[k]
            if g_in is None:
                continue
            if g_in.dtype != dtype:
                g_in = g_in.astype(dtype)
            if type(target) is int:
                earlier = grads.get(target)
                grads[target] = g_in if earlier is None else earlier + g_in
            else:  # a leaf: the walk's copy where the array is not the leaf's alone, then its sum
                leaf = args[target.index] if type(target) is Ref else target
                if g_in.base is not None or id(g_in) in given_away:
                    g_in = g_in.copy()
                given_away.add(id(g_in))
                leaf._accumulate(g_in)
        if not retain_graph:
            backward.__self__.__dict__.clear()  # free what forward saved, as the walk does


def _as_array(forward, xp):
    @functools.wraps(forward)
    def as_array(*args, **options):
        return xp.asarray(forward(*args, **options))
    return as_array


def _has_slot(template):
    if type(template) is _Slot:
        return True
    return isinstance(template, (tuple, list)) and any(map(_has_slot, template))


def _fill(template, values):
    if type(template) is _Slot:
        a = values[template.index]
        return Tensor._from_op(a, backend.device_of(a), None) if template.tensor else a
    if isinstance(template, (tuple, list)) and type(template) is not Tensor:
        return type(template)(_fill(v, values) for v in template)
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


# --- guards: the range checks eager mode makes before these ops, made before each replay

def _guard(cls, key, value, options, in_shapes, recording):
    """A check of an op's option that comes from the arguments (an embedding's indices,
    the targets): values -> True when the replay may go on."""
    def integer(slot):
        a = recording.args[slot.index] if slot.index < len(recording.args) else None
        a = a._data if isinstance(a, Tensor) else a
        return a is not None and backend.is_integer(a.dtype)

    def one_dim(part):  # an index part that picks along exactly one dim (so part k indexes dim k)
        if type(part) is _Slot:
            return integer(part)
        return isinstance(part, (int, slice)) or backend.is_array(part) and backend.is_integer(part.dtype)

    if cls is Index and key == "index":
        parts = value if type(value) is tuple else (value,)
        checks = [(part.index, in_shapes[0][dim]) for dim, part in enumerate(parts) if type(part) is _Slot]
        if all(map(one_dim, parts)):  # (negative indices fail the check: eager mode then runs the call)
            return lambda values: all(_within(values[s], n) for s, n in checks)
    if cls is CrossEntropy and key == "targets" and integer(value):
        classes, ignore, slot = in_shapes[0][1], options["ignore_index"], value.index
        return lambda values: _targets_ok(values[slot], classes, ignore)
    raise CaptureError(f"{cls.__name__}'s option {key!r} comes from the arguments in a way the replay "
                       "cannot range-check: run this function eagerly")


def _within(a, n):
    return a.size == 0 or bool(a.min() >= 0) and bool(a.max() < n)


def _targets_ok(targets, classes, ignore_index):
    """What functional._class_ids accepts: ids in [0, classes), or ignore_index."""
    if _within(targets, classes):
        return True
    return _within(targets[targets != ignore_index], classes)
