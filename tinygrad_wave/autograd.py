"""The graph: what a node is, how one is recorded, and how backward walks it.

A node is one call of an op (a Function subclass). It remembers its inputs
and whatever its forward saved, and nothing about its output, so a graph
is a chain of references from the loss back to the leaves, and dropping the
loss frees it. Of an input that another op made it keeps only the shape,
dtype and version (an `Intermediate`), not the array: as in torch, a graph
holds what the backward passes read, which each forward saved itself, and an
intermediate the code drops is freed at once. This file is the only place
that walks the graph: `walk` runs backward one node at a time
(Tensor.backward runs it to the end).

A node records, for each input, the node that made it at that moment
(`parents`, torch's edges): an in-place change can later give a tensor a new
node (see inplace.py), and the ops that read the tensor before must still
send their gradient to the old one.

Two guards keep a gradient from being silently wrong:
- every tensor carries a version, bumped by each in-place change of its data;
  a node records its inputs' versions, and backward refuses to run a node
  when an input whose value its backward reads changed since forward (its
  saved arrays would no longer match);
- every gradient an op returns must have its input's shape.
"""
import functools
import inspect
import itertools
import threading
import weakref

from . import backend, watch

_creation_counter = itertools.count()  # numbers nodes in the order they are recorded


class _GradMode(threading.local):
    """Whether ops record nodes, per thread as in torch: a no_grad block in one
    thread must not turn off gradients in another."""
    enabled = True


_grad_mode = _GradMode()


class _GradModeSwitch:
    """Grad mode set to `self.enabled` inside a `with` block, or inside every call of a function
    it decorates, and given back after: torch's no_grad, enable_grad, inference_mode and
    set_grad_enabled. Like torch's, it decorates with or without parentheses (@no_grad,
    @no_grad()), a generator function's body included, and one object serves many blocks."""

    def __init__(self):
        self._previous = []  # one entry a block entered and not yet left (the object may be nested)

    def __enter__(self):
        self._previous.append(_grad_mode.enabled)
        _grad_mode.enabled = self.enabled

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous.pop()

    def __call__(self, fn):
        enabled = self.enabled
        if inspect.isgeneratorfunction(fn):
            return _switched_generator(fn, enabled)

        @functools.wraps(fn)
        def switched(*args, **kwargs):
            with _switch_to(enabled):  # a switch of its own for each call: calls may nest or run in threads
                return fn(*args, **kwargs)
        return switched


def _switch_to(enabled):
    switch = _GradModeSwitch()
    switch.enabled = enabled
    return switch


def _switched_generator(fn, enabled):
    """A generator's body runs in pieces, one for each next(), send(), throw() or close(): each
    piece under the mode, as torch runs them."""
    @functools.wraps(fn)
    def switched(*args, **kwargs):
        generator = fn(*args, **kwargs)
        resume, value = generator.send, None
        while True:
            try:
                with _switch_to(enabled):
                    item = resume(value)
            except StopIteration as stop:
                return stop.value
            try:
                value, resume = (yield item), generator.send
            except GeneratorExit:
                with _switch_to(enabled):
                    generator.close()
                raise
            except BaseException as error:  # thrown in by the caller: on into the generator's body
                value, resume = error, generator.throw
    return switched


class _NoArguments(_GradModeSwitch):
    """A switch that takes no arguments, so that a bare @switch decorates the function itself."""

    def __new__(cls, fn=None):
        return super().__new__(cls) if fn is None else cls()(fn)


class no_grad(_NoArguments):
    """Inside the block, ops record no nodes and outputs need no grad."""
    enabled = False


class enable_grad(_NoArguments):
    """Inside the block, ops record nodes again (within a no_grad block too)."""
    enabled = True


class inference_mode(_GradModeSwitch):
    """torch.inference_mode: here no_grad, and with mode=False gradients on (inside a no_grad
    block too, as torch turns them on). torch's inference tensors also refuse to enter a graph
    later; these are ordinary tensors made outside one."""

    def __new__(cls, mode=True):
        if callable(mode):  # a bare @inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        super().__init__()
        self.enabled = not mode


class set_grad_enabled(_GradModeSwitch):
    """torch.set_grad_enabled(mode): sets grad mode at once (a statement of its own), and as a
    block or a decorator sets it inside and gives the previous mode back after."""

    def __init__(self, mode):
        if callable(mode):  # a bare @set_grad_enabled: it needs its mode
            raise TypeError("set_grad_enabled takes a mode, True or False: write @set_grad_enabled(False)")
        super().__init__()
        self.enabled, self._before = bool(mode), _grad_mode.enabled
        _grad_mode.enabled = self.enabled

    def __call__(self, fn):
        _grad_mode.enabled = self._before  # a decorator sets nothing until the function runs
        return super().__call__(fn)

    def __enter__(self):
        self._previous.append(self._before)  # leaving gives back the mode from before this object, as torch
        _grad_mode.enabled = self.enabled


def is_grad_enabled():
    return _grad_mode.enabled


class Function:
    """One op. A subclass writes:

    - `forward(self, *arrays, **options)`: the output array. `self.xp` is the array
      module of the inputs' device; `self.needs_grad[i]` says whether input i wants a grad
      (all False where no node is recorded), so that forward saves only what backward reads.
    - `backward(self, g)`: one gradient per input, in a tuple (None for an input that
      needs none), its derivation in the docstring.

    and, where its backward reads less than all its inputs, declares so (the version
    check then refuses only the in-place changes that would make a gradient wrong):

    - `saves_inputs = False`: backward never reads its inputs' values (only their
      shapes, or arrays it computed itself).
    - `saves_output = True`: backward reads its own output (tanh, exp), which is checked.
    - `reads_input(i)`: whether backward reads input i, given which inputs need a
      gradient (a * b reads b for a's gradient only).
    - `returns_view = True`: the output may be a view of the first input (reshape, a
      slice); a view shares its input's memory, so it shares its version counter, and
      changing either in place is seen through both.

    During backward, `out_grad` collects d loss / d output from every consumer;
    `retained` points (weakly) at the output when it called retain_grad()."""
    saves_inputs = True
    saves_output = False
    returns_view = False
    __slots__ = ("xp", "inputs", "parents", "needs_grad", "versions", "sequence", "out_grad",
                 "retained")  # saved arrays go in __dict__

    @property
    def name(self):
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' arrays and wrap the result in a tensor; when grad mode
        is on and an input needs a gradient, this call becomes the output's node."""
        node, first = cls(), inputs[0]
        needs_grad, recorded = _gradients_wanted(inputs)
        node.xp, node.needs_grad = first.xp, needs_grad
        out = node.forward(*[t._data for t in inputs], **options)
        if recorded:
            node._record(inputs)
        out = node._output_tensor(out, first, recorded, options)
        if watch.watcher is not None:
            watch.watcher.op_applied(node, inputs, options, out)
        return out

    def _output_tensor(self, out, first, recorded, options):
        """forward's result as a tensor on its device (an array even where NumPy gave a scalar,
        for an op on 0-d arrays, so that it can change in place). A view of `first` shares
        its version counter, and `first` remembers it: an in-place change of either must
        reach the other's graph. A node whose backward reads its output remembers its version."""
        xp = self.xp
        if type(out) is not xp.ndarray and not backend.is_array(out):
            out = xp.asarray(out)
        device = first.device if type(out) is type(first._data) else backend.device_of(out)  # (To moves)
        shared = first._version if self.returns_view and xp.may_share_memory(out, first._data) else None
        tensor = type(first)._wrap(out, device, self if recorded else None, shared)
        if recorded and self.saves_output:
            self.output_version = tensor._version  # a new counter, at 0 (such outputs are new memory)
        if shared is not None:
            first._add_view(tensor, type(self), options)
        return tensor

    def _record(self, inputs):
        """Remember what backward will need: the inputs (a leaf itself, whose .grad the walk
        fills; what another op made, as an Intermediate), the nodes that made them (now: an
        in-place change may give an input a new node later), their versions, and this node's
        place in the order of creation."""
        self.inputs = tuple([t if t.grad_fn is None else Intermediate(t) for t in inputs])
        self.sequence = next(_creation_counter)
        self.parents = tuple([t.grad_fn for t in inputs])
        self.versions = tuple([t._version[0] for t in inputs]) if self.saves_inputs else None
        self.out_grad = self.retained = None

    @classmethod
    def replay_check(cls, option, options, in_shapes):
        """For a replay (the jit) that gives this op new values of `option` taken from new
        arguments (indices, targets): a function of the new value, True when forward may take
        it, as the eager checks before the op would; None where the op declares none, and the
        replay refuses. `options` are the recorded ones, `in_shapes` the inputs' shapes."""
        return None

    def release(self):
        """Drop inputs and saved arrays once backward has used them."""
        self.__dict__.clear()
        self.inputs = self.parents = self.out_grad = self.retained = None

    def reads_input(self, i):
        """Whether backward reads the value of input i (given which inputs need a gradient)."""
        return True

    def check_versions(self):
        """Raise if an input (or the output) that backward reads changed in place since forward, as torch does."""
        if self.versions is not None and tuple([t._version[0] for t in self.inputs]) != self.versions:
            for i, t in enumerate(self.inputs):
                if t._version[0] != self.versions[i] and self.reads_input(i):
                    self._changed(f"input {i}, shape {t.shape}", self.versions[i], t._version[0])
        if self.saves_output and self.output_version[0] != 0:  # (through a .detach()ed copy)
            self._changed("its output", 0, self.output_version[0])

    def _changed(self, what, before, now):
        raise RuntimeError(
            f"one of the tensors needed by {self.name} for its gradient ({what}) was modified by an "
            f"in-place operation after the forward pass (version {before} -> {now}): run the forward "
            f"again after changing it, or change a .clone() of it instead")

    def __repr__(self):
        return f"<{self.name}>"


class Intermediate:
    """What a node keeps of an input that another op made: its shape and dtype (to check and
    cast the gradient it hands back), its version counter (for the in-place check), and the
    tensor itself only weakly, for the teaching tools while the code still holds it. Holding
    the tensor would hold its array until backward: gpt.py's eager step then peaked at 22 MB
    instead of 11 and ran about 5 % slower (makemore's Transformer, 8 %)."""
    __slots__ = ("shape", "dtype", "_version", "tensor")

    def __init__(self, t):
        data = t._data
        self.shape, self.dtype, self._version, self.tensor = data.shape, data.dtype, t._version, weakref.ref(t)


def _gradients_wanted(inputs):
    """(needs_grad, recorded): which inputs an op's backward will give a gradient, and whether
    the op is recorded at all (grad mode on, and some input requires grad). Known before
    forward runs, so that forward saves only what its backward will read."""
    needs_grad = tuple([t._requires_grad for t in inputs])
    if _grad_mode.enabled and True in needs_grad:
        return needs_grad, True
    return (False,) * len(inputs), False


def topological_order(root):
    """Nodes reachable from `root`, each before the nodes that made its inputs.

    A node is always created after the nodes of its inputs, so its creation
    number orders the graph: collect the reachable nodes with an explicit
    stack (recursion would pass Python's limit on a graph thousands of nodes
    deep), then sort them newest first. PyTorch orders its backward the same way.
    """
    found, stack = {id(root): root}, [root]
    while stack:
        node = stack.pop()
        if node.inputs is None:
            raise RuntimeError(
                "backward through a graph that was already freed: call backward(retain_graph=True) "
                "the first time to keep it, or run the forward pass again")
        for parent in node.parents:
            if parent is not None and id(parent) not in found:
                found[id(parent)] = parent
                stack.append(parent)
    return sorted(found.values(), key=lambda node: node.sequence, reverse=True)


def walk(root_tensor, grad, retain_graph=False):
    """Push `grad` (d loss / d root) back through the graph, one node at a time.

    Yields (node, grad_out, grads_in) after each node's backward has run and its
    input gradients were handed on: grad_out is d loss / d node's output,
    grads_in one array (or None) per input. Each node's out_grad sums the
    gradients from all its consumers before the node runs its own backward (the
    topological order guarantees they all ran first): a tensor used twice gets
    the sum of both paths. Leaves, and non-leaves that called retain_grad(),
    add what reaches them into .grad. Without retain_graph every node is freed
    once used (and at the end, if the walk stops early).
    """
    if watch.watcher is not None:
        watch.watcher.backward_walked(root_tensor, grad, retain_graph)
    root = root_tensor.grad_fn
    if root is None:
        root_tensor._accumulate(grad.copy())  # the caller's array stays the caller's
        return
    order = topological_order(root)  # (every out_grad is None: new, or reset by the last walk)
    root.out_grad = grad
    given_away = {id(grad)}  # the caller's array stays the caller's
    done = 0
    try:
        for node in order:
            g_out = node.out_grad
            if g_out is not None:  # (None: no consumer sent a gradient, an op returned None)
                grads_in = _run_backward(node, g_out)
                for t, parent, needs, g in zip(node.inputs, node.parents, node.needs_grad, grads_in):
                    if needs and g is not None:
                        _hand_on(node, t, parent, g, given_away)
                yield node, g_out, grads_in
            if not retain_graph:
                node.release()
            done += 1
    finally:  # stopped early (an error, or a teaching walk left unfinished): no half-walked graph stays usable
        _end_walk(order, done, retain_graph)


def _run_backward(node, g_out):
    """node.backward(g_out), guarded: the version check first, the gradient handed to a
    retained output, and the return checked to hold one gradient per input."""
    if node.versions is not None or node.saves_output:
        node.check_versions()
    if node.retained is not None and node.retained() is not None:
        node.retained()._accumulate(g_out.copy())  # its own copy: the walk goes on using g_out
    grads_in = node.backward(g_out)
    try:
        wrong = len(grads_in) != len(node.inputs)
    except TypeError:  # not a tuple at all: None, a lone array, an exercise's `...`
        wrong = True
    if wrong:
        raise RuntimeError(_wrong_return(node, grads_in))
    return grads_in


def _end_walk(order, done, retain_graph):
    """Free the nodes the walk did not reach, or with retain_graph reset every node's
    out_grad, so that the next walk starts from nothing."""
    if retain_graph:
        for node in order:
            node.out_grad = None
    else:
        for node in order[done:]:
            node.release()


def _wrong_return(node, grads_in):
    if grads_in is Ellipsis:
        what = "... : not yet written (replace the ... with your code)"
    elif isinstance(grads_in, (tuple, list)):
        what = f"{len(grads_in)} gradient(s) for its {len(node.inputs)} inputs"
    else:
        what = f"a {type(grads_in).__name__}, not a tuple"
    return (f"{node.name}.backward returned {what}: return one gradient per input, in a tuple, "
            "None for an input that needs none")


def _hand_on(node, t, parent, g, given_away):
    """Give input t of node its gradient g: into the out_grad of `parent`, the node that
    made t when node read it, or, for a leaf, into t's .grad."""
    if g.shape != t.shape:
        raise RuntimeError(f"{node.name}.backward returned a gradient of shape {tuple(g.shape)} "
                           f"for an input of shape {t.shape}")
    if parent is not None:
        parent.out_grad = add_gradient(parent.out_grad, g, t.dtype)
    else:
        hand_to_leaf(t, g, given_away)  # (its .grad takes t's dtype: Tensor._accumulate)


def add_gradient(total, g, dtype):
    """`total` (None: nothing yet) plus g in its input's `dtype` (a mixed-dtype op's backward
    may return another): a tensor used by several ops gets the sum of every path's gradient.
    (The jit's replay sums by this rule too.)"""
    if g.dtype != dtype:
        g = g.astype(dtype)
    return g if total is None else total + g


def hand_to_leaf(t, g, given_away):
    """Add g into leaf t's .grad. `given_away`: ids of the arrays already handed out in this
    walk (the caller's root gradient among them). (The jit's replay hands on gradients by this
    rule too.)"""
    # A tensor owns its .grad, which the user may change in place. Ops may pass on
    # their upstream array or a view of it (Add, Reshape), so a view, the caller's
    # root gradient, or an array already handed to another tensor is copied.
    if g.base is not None or id(g) in given_away:
        g = g.copy()
    given_away.add(id(g))
    t._accumulate(g)


def receivers(root_tensor):
    """The tensors a walk from `root_tensor` adds gradients to: the leaves that need
    one, and the non-leaves that called retain_grad() (for a caller that must put
    their .grad back, as teach.backward_steps does when its walk is left unfinished)."""
    if root_tensor.grad_fn is None:
        return [root_tensor]
    found = {}
    for node in topological_order(root_tensor.grad_fn):
        retained = node.retained() if node.retained is not None else None
        if retained is not None:
            found[id(retained)] = retained
        for t, parent, needs in zip(node.inputs, node.parents, node.needs_grad):
            if parent is None and needs:
                found[id(t)] = t
    return list(found.values())
