"""Replaying a captured call: two recordings that agree, compiled into steps over a list
of arrays (the arguments', then one slot per event, then arrays from outside), each
step a small function of that list. No Tensor, node, topological sort or module call
is made: the same forward and backward methods run on the new arrays, in the same
order, and gradients are summed and reach the leaves by the walk's own rules
(autograd.add_gradient, autograd.hand_to_leaf). Each op's output is let go after the
last step that reads it, as eager code drops a tensor it no longer refers to: holding
every array of a step to its end would double its memory (and slow it, in the cache).

Before the steps, the guards: the tensors from outside are the ones captured (same
array, same requires_grad) and the modules are in the mode they were captured in,
else CaptureError; indices and targets from the arguments pass their op's own
replay check (Function.replay_check), else the call runs eagerly and raises eager's
own error (or is right, as for a negative index).
"""
import functools
from typing import Any, NamedTuple

from .. import autograd, backend
from ..inplace import ARITHMETIC
from ..tensor import Tensor
from .record import (ArrayChanged, AttributeSet, BackwardWalked, CaptureError, GradCleared, MethodCalled, OpApplied,
                     Ref)

EAGER = object()  # what a replay returns when a guard sends the call to eager mode


class Slot(NamedTuple):
    """A place in a replay's list of arrays; `tensor`: handed out wrapped in a Tensor; `graph`:
    for a returned tensor that had a graph in eager mode, how its backward is replayed
    (a ForwardGraph), or FREED when backward had already freed it inside the call."""
    index: int
    tensor: bool
    graph: Any = None


FREED = "freed"


class PlannedOp(NamedTuple):
    """One op of a recorded walk, ready for backward_along, with where the gradient of each
    input that needs one goes, as (input k, target, the input's dtype): into the output
    gradient of the op that made the input (`to_ops`, the target that op's event index), or
    to a tensor from outside the call (`to_receivers`, the target its place in the walk's
    receivers: Refs of arguments and leaves, each once)."""
    op: int
    backward: Any
    to_ops: tuple
    to_receivers: tuple


class ForwardGraph(NamedTuple):
    """The recorded walk from a returned tensor (a captured forward's output)."""
    root: int
    plan: tuple  # PlannedOps
    receivers: tuple


class ReplayedForward(autograd.Function):
    """The node of a tensor returned by a replay of a captured forward, as torch.compile(model)
    returns one: its inputs are the tensors that the recorded walk hands gradients to
    (parameters, arguments), and its backward is that walk over the replay's saved arrays.

    It holds for one replay only: the next call of the captured function saves new arrays in
    the same ops, so a backward after it is refused rather than computed from them."""

    @classmethod
    def made(cls, replay, graph, tensors):
        node = cls()
        node.inputs, node.parents = tensors, tuple(t.grad_fn for t in tensors)
        node.needs_grad = (True,) * len(tensors)
        node.versions = tuple(t._version[0] for t in tensors)  # the walk refuses a change before backward
        node.out_grad = node.retained = None
        node.sequence = next(autograd._creation_counter)
        node.replay, node.call, node.graph = replay, replay.calls, graph
        return node

    def backward(self, g):
        """The recorded walk's own arithmetic (backward_along), each op's backward on the arrays
        its replayed forward saved; what reaches a receiver is summed and returned as its gradient."""
        if self.replay.calls != self.call:
            raise CaptureError("backward() through a tensor that a captured function returned, after the "
                               "function was called again: that call replaced the values this backward needs. "
                               "Run backward before the next call (or call the function eagerly)")
        grads = [None] * len(self.inputs)

        def receive(position, g_in, dtype):
            grads[position] = autograd.add_gradient(grads[position], g_in, dtype)
        backward_along(self.graph.root, g, self.graph.plan, True, receive)  # (the walk frees this node)
        return tuple(grads)


class ReplayedOutput(autograd.Function):
    """The node of a returned tensor whose graph backward had freed inside the call (the loss
    of a whole step): a backward through it raises, as eager mode's would."""

    @classmethod
    def made(cls):
        node = cls()
        node.inputs = node.parents = node.needs_grad = ()
        node.versions, node.out_grad, node.retained = None, None, None
        node.sequence = next(autograd._creation_counter)
        return node

    def backward(self, g):
        """No derivation: the graph behind this output was freed inside the call, so this refuses."""
        raise CaptureError("backward() through a tensor returned by a replay of a captured function, whose "
                           "backward already ran inside the function and freed its graph (as eager mode's "
                           "second backward would find it freed)")


def same(first, second):
    """Raise unless two recordings of the same signature did the same thing."""
    for i, (a, b) in enumerate(zip(first.events, second.events)):
        if a != b:
            raise CaptureError(f"the captured function did different things on its first two calls (event "
                               f"{i}: {a.describe()} then {b.describe()}): Python control flow that depends on "
                               "the data, or on state outside the arguments, cannot be replayed. Run it eagerly")
    if len(first.events) != len(second.events) or (first.result, first.graphs) != (second.result, second.graphs):
        raise CaptureError("the captured function's first two calls differ in length or in what they "
                           "return: it cannot be replayed. Run it eagerly")


def constant(new, old, user):
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


class Replay:
    def __init__(self, first, second):
        same(first, second)
        self.recording, n_in = second, len(second.args)
        self.slots = {Ref("in", k): k for k in range(n_in)}
        self.slots.update((Ref("op", i), n_in + i) for i in range(len(second.events)))
        self.fixed = [None] * (n_in + len(second.events))
        self.persistent = []  # (tensor, its array, requires_grad) as captured: checked at every replay
        for kind, objects, earlier in (("leaf", second.leaves, first.leaves),
                                       ("array", second.outside, first.outside)):
            for j, (obj, old) in enumerate(zip(objects, earlier)):
                if obj is not old:
                    constant(obj, old, second.user[Ref(kind, j)])
                elif kind == "leaf":
                    self.persistent.append((obj, obj._data, obj._requires_grad))
                self.slots[Ref(kind, j)] = len(self.fixed)
                self.fixed.append(obj._data if kind == "leaf" else obj)
        self.modes = tuple(second.modes.values())
        self.checks, self.nodes, self.reads = [], {}, {}
        compile_event = {OpApplied: self._op, GradCleared: self._grad_cleared, MethodCalled: self._method,
                         AttributeSet: self._attribute, BackwardWalked: self._backward,
                         ArrayChanged: self._array_changed}
        self.steps = [compile_event[type(event)](i, event) for i, event in enumerate(second.events)]
        graphs = {self.slots[ref]: FREED if routes is None else self._forward_graph(ref, routes)
                  for ref, routes in second.graphs.items()}
        self.result = with_graph(self._bind(second.result), graphs)
        self.releases = self._releases(n_in)
        self.leaves = second.leaves  # what a walk's receivers of kind "leaf" stand for
        self.calls = 0  # replays so far: a ReplayedForward holds for the call that made it
        del self.recording, self.slots, self.nodes  # the recordings' arrays can go

    def __call__(self, args):
        for t, array, requires_grad in self.persistent:
            if t._data is not array or t._requires_grad is not requires_grad:
                raise CaptureError(f"a tensor of shape {t.shape} that the captured function uses was replaced "
                                   "or changed (a new .data array, .to(), requires_grad) since the capture: "
                                   "call .reset() on the captured function to capture it again")
        for module, training in self.modes:
            if module.training is not training:
                self._mode_changed()
        values = self.fixed[:]
        for k, a in enumerate(args):
            values[k] = a._data if isinstance(a, Tensor) else a
        for check in self.checks:
            if not check(values):
                return EAGER
        self.calls += 1
        for step, release in zip(self.steps, self.releases):
            step(values, args)
            for k in release:
                values[k] = None
        return fill(self.result, values, lambda graph: self._node(graph, args))

    def _node(self, graph, args):
        if graph is FREED:
            return ReplayedOutput.made()
        return ReplayedForward.made(self, graph, self._tensors(graph.receivers, args))

    def _tensors(self, receivers, args):
        """The tensors a walk's receivers are in this call: an argument, or a leaf."""
        return tuple(args[ref.index] if ref.kind == "in" else self.leaves[ref.index] for ref in receivers)

    def _mode_changed(self):
        changed = dict.fromkeys(f"{type(m).__name__}.training" for m, training in self.modes
                                if m.training is not training)
        raise CaptureError(f"the train/eval mode changed since the capture ({', '.join(changed)}): a replay "
                           "runs the ops of the mode it was captured in. Call .reset() to capture again, or "
                           "capture one function per mode")

    def _releases(self, n_in):
        """For each step, the op outputs it reads last (or makes, if nothing reads them): a replay
        lets go of them there, as eager mode's tensors die when nothing refers to them, rather
        than holding every array of the call to its end."""
        last_reader = {n_in + i: i for i in range(len(self.steps)) if i in self.nodes}
        for i, slots in sorted(self.reads.items()):
            last_reader.update((k, i) for k in slots if k in last_reader)
        for slot in slots_in(self.result):
            last_reader.pop(slot.index, None)
        releases = [[] for _ in self.steps]
        for k, i in last_reader.items():
            releases[i].append(k)
        return tuple(map(tuple, releases))

    def _bind(self, template):
        """A template with arguments' and ops' refs as Slots, and everything else concrete."""
        if type(template) is Ref:
            ref = template._replace(tensor=False)  # the array's name
            if ref.kind in ("in", "op"):
                return Slot(self.slots[ref], template.tensor)
            if ref.kind == "leaf" and template.tensor:
                return self.recording.leaves[ref.index]
            return self.fixed[self.slots[ref]]
        if isinstance(template, (tuple, list)):
            return type(template)(self._bind(v) for v in template)
        if isinstance(template, dict):
            return {k: self._bind(v) for k, v in template.items()}
        return template

    # --- each event compiled into a step: a function of (values, the call's arguments)

    def _op(self, i, event):
        cls = event.op
        node = self.nodes[i] = cls.__new__(cls)
        node.xp, node.needs_grad = event.xp, event.needs_grad
        options = self._bind(event.options)
        dynamic = tuple((k, v) for k, v in options.items() if has_slot(v))
        at_this_step = []  # checks of options computed inside the call (targets.view(-1)): known only here
        for key, value in dynamic:
            computed = any(slot.index >= len(self.recording.args) for slot in slots_in(value))
            (at_this_step if computed else self.checks).append(self._check(cls, key, value, event))
        static = {k: v for k, v in options.items() if not has_slot(v)}
        forward = node.forward
        if event.out_shape == ():  # NumPy gives a scalar for ops on 0-d arrays: Function.apply makes it an array
            forward = as_array(forward, event.xp)
        arg_slots, out = tuple(self.slots[a] for a in event.inputs), len(self.recording.args) + i
        self.reads[i] = arg_slots + tuple(slot.index for _, v in dynamic for slot in slots_in(v))

        if not dynamic:
            def run_op(values, args):
                values[out] = forward(*map(values.__getitem__, arg_slots), **static)
            return run_op

        def run_op_on_arguments(values, args):
            values[out] = forward(*map(values.__getitem__, arg_slots), **static,
                                  **{k: fill(v, values) for k, v in dynamic})
        if not at_this_step:
            return run_op_on_arguments

        def run_checked_op(values, args):
            if not all(check(values) for check in at_this_step):
                raise IndexError(f"{cls.__name__}: an index or target computed inside the captured function "
                                 "is out of range in this call. Eager mode refuses it at this op too, after "
                                 "running what comes before it, as this replay did")
            run_op_on_arguments(values, args)
        return run_checked_op

    @staticmethod
    def _check(cls, key, value, event):
        """The op's own check of an option that comes from the arguments (an embedding's indices, the targets)."""
        check = cls.replay_check(key, event.recorded_options, event.in_shapes)
        if check is None:
            raise CaptureError(f"{cls.__name__}'s option {key!r} comes from the captured function's arguments, "
                               f"and {cls.__name__} declares no replay_check (autograd.Function.replay_check) "
                               "to tell whether new values are ones its forward accepts: run this function "
                               "eagerly, or declare one")
        return lambda values: check(fill(value, values))

    def _array_changed(self, i, event):
        target, value, index = self.slots[event.target], self.slots[event.value._replace(tensor=False)], event.index
        self.reads[i] = (target, value)
        if event.how == "item assignment":
            def set_item(values, args):
                values[target][index] = values[value]
            return set_item
        in_place = ARITHMETIC[event.how][1]

        def change(values, args):
            in_place(values[target], values[value])
        return change

    def _grad_cleared(self, i, event):
        leaf = self.recording.leaves[event.leaf.index]

        def clear_grad(values, args):
            leaf._grad = None
        return clear_grad

    def _method(self, i, event):
        obj, name, method_args = self.recording.objects[event.obj_id], event.name, event.args

        def call(values, args):  # looked up again: the call is whatever obj.<name> is now, as in eager mode
            getattr(obj, name)(*method_args)
        return call

    def _attribute(self, i, event):
        obj, name, value = self.recording.objects[event.obj_id], event.name, event.value

        def set_attribute(values, args):
            setattr(obj, name, value)
        return set_attribute

    def _backward(self, i, event):
        plan, receivers = self._plan(event.order)
        root, root_grad, retain_graph = event.root, self._bind(event.grad), event.retain_graph
        self.reads[i] = tuple(slot.index for slot in slots_in(root_grad))

        def walk(values, args):
            root_array = fill(root_grad, values)
            tensors, given_away = self._tensors(receivers, args), {id(root_array)}

            def hand_to_leaf(position, g, dtype):  # (its .grad takes the leaf's dtype)
                autograd.hand_to_leaf(tensors[position], g, given_away)
            backward_along(root, root_array, plan, retain_graph, hand_to_leaf)
        return walk

    def _forward_graph(self, ref, order):
        """A ForwardGraph of the walk `order` from the returned op `ref`."""
        return ForwardGraph(ref.index, *self._plan(order))

    def _plan(self, order):
        """The walk `order` (NodeRoutes) compiled for backward_along: its PlannedOps, and its receivers."""
        receivers = {}  # Ref -> its place, in the order first reached

        def place(ref):
            return receivers.setdefault(ref, len(receivers))
        plan = tuple(PlannedOp(op, self.nodes[op].backward,
                               tuple((k, ref.index, dtype) for k, ref, dtype in routes if ref.kind == "op"),
                               tuple((k, place(ref), dtype) for k, ref, dtype in routes if ref.kind != "op"))
                     for op, routes in order)
        return plan, tuple(receivers)


def backward_along(root, root_grad, plan, retain_graph, deliver):
    """autograd.walk's arithmetic, in its order, along the recorded routes; what reaches a
    receiver goes to deliver(its place, gradient, the input's dtype)."""
    grads = {root: root_grad}  # op -> d loss / d its output, summed over its consumers so far
    for step in plan:
        g = grads.pop(step.op, None)
        if g is None:
            continue
        grads_in = step.backward(g)
        for k, op, dtype in step.to_ops:
            if grads_in[k] is not None:
                grads[op] = autograd.add_gradient(grads.get(op), grads_in[k], dtype)
        for k, place, dtype in step.to_receivers:
            if grads_in[k] is not None:
                deliver(place, grads_in[k], dtype)
        if not retain_graph:
            step.backward.__self__.__dict__.clear()  # free what forward saved, as the walk does


def as_array(forward, xp):
    @functools.wraps(forward)
    def as_array(*args, **options):
        return xp.asarray(forward(*args, **options))
    return as_array


def has_slot(template):
    if type(template) is Slot:
        return True
    return isinstance(template, (tuple, list)) and any(map(has_slot, template))


def slots_in(template):
    """The Slots anywhere in a template (in tuples, lists and dict values)."""
    if type(template) is Slot:
        return [template]
    if isinstance(template, dict):
        template = list(template.values())
    return [slot for part in template for slot in slots_in(part)] if isinstance(template, (tuple, list)) else []


def with_graph(template, graphs):
    """The result's template, its Slots in `graphs` (slot index -> graph) given their graph."""
    if type(template) is Slot:
        return template._replace(graph=graphs.get(template.index))
    if isinstance(template, (tuple, list)):
        return type(template)(with_graph(v, graphs) for v in template)
    if isinstance(template, dict):
        return {k: with_graph(v, graphs) for k, v in template.items()}
    return template


def fill(template, values, node_of=None):
    """`template` with its Slots' arrays from `values` (tensors where the slot says so, each
    returned one that had a graph with the node node_of(its graph) gives it)."""
    if type(template) is Slot:
        a = values[template.index]
        if not template.tensor:
            return a
        node = None if template.graph is None else node_of(template.graph)
        return Tensor._wrap(a, backend.device_of(a), node)
    if isinstance(template, (tuple, list)) and type(template) is not Tensor:
        return type(template)(fill(v, values, node_of) for v in template)
    if isinstance(template, dict):
        return {k: fill(v, values, node_of) for k, v in template.items()}
    return template
