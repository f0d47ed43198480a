"""The graph: what a node is, how one is recorded, and how backward walks it.

A node is one call of an op (a Function subclass). It remembers its inputs
and whatever its forward saved, and nothing about its output, so a graph
is a chain of references from the loss back to the leaves, and dropping the
loss frees it. This file is the only place that walks the graph: `walk`
runs backward one node at a time, and `backward` is that walk run to the end.

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
import itertools
import threading
from contextlib import contextmanager

from . import backend, watch

_creation_counter = itertools.count()  # numbers nodes in the order they are recorded


class _GradMode(threading.local):
    """Whether ops record nodes, per thread as in torch: a no_grad block in one
    thread must not turn off gradients in another."""
    enabled = True


_grad_mode = _GradMode()


@contextmanager
def no_grad():
    """Inside the block, ops record no nodes and outputs need no grad."""
    previous, _grad_mode.enabled = _grad_mode.enabled, False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextmanager
def inference_mode(mode=True):
    """torch.inference_mode: here no_grad, and with mode=False gradients on (inside a no_grad
    block too, as torch turns them on). torch's inference tensors also refuse to enter a graph
    later; these are ordinary tensors made outside one."""
    previous, _grad_mode.enabled = _grad_mode.enabled, not mode
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled():
    return _grad_mode.enabled


class Function:
    """One op. Subclasses write `forward(self, *arrays, **options)` returning
    an array, and `backward(self, g)` returning one gradient per input
    (None for an input that needs none). `self.xp` is the array module of the
    inputs' device; `self.needs_grad[i]` says whether input i wants a grad.
    During backward, `out_grad` collects d loss / d output from every consumer;
    `retained` points (weakly) at the output when it called retain_grad().
    An op whose backward never reads its inputs' values (only their shapes, or
    arrays it computed itself) sets `saves_inputs = False`: changing those inputs
    in place after forward cannot make its gradient wrong. An op whose backward
    reads its own output (tanh, exp) sets `saves_output`: that output is checked
    instead; one whose backward reads only some inputs, depending on which need
    a gradient (a * b reads b for a's gradient), says so in `reads_input`. An op
    that may return a view of its first input (reshape, a slice) sets
    `returns_view`: a view shares its input's memory, so it shares its version
    counter, and changing either in place is seen through both."""
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
        node = cls()
        first = inputs[0]
        xp = node.xp = first.xp
        out = node.forward(*[t._data for t in inputs], **options)
        if type(out) is not xp.ndarray and not backend.is_array(out):  # NumPy gives a scalar for ops
            out = xp.asarray(out)  # on 0-d arrays: keep an array, which can change in place
        device = first.device if type(out) is type(first._data) else backend.device_of(out)  # (To moves)
        shared = first._version if cls.returns_view and xp.may_share_memory(out, first._data) else None
        needs_grad = tuple([t._requires_grad for t in inputs])
        if _grad_mode.enabled and True in needs_grad:
            node.inputs, node.needs_grad, node.sequence = inputs, needs_grad, next(_creation_counter)
            node.parents = tuple([t.grad_fn for t in inputs])
            node.versions = tuple([t._version[0] for t in inputs]) if cls.saves_inputs else None
            node.out_grad = node.retained = None
            out = type(first)._from_op(out, device, node, shared)
            if cls.saves_output:
                node.output_version = out._version  # a new counter, at 0 (such outputs are new memory)
        else:
            out = type(first)._from_op(out, device, None, shared)
        if shared is not None:  # an in-place change of either must reach the other's graph
            first._add_view(out, cls, options)
        if watch.watcher is not None:
            watch.watcher.op_applied(node, inputs, options, out)
        return out

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
                for t, parent, needs, g in zip(node.inputs, node.parents, node.needs_grad, grads_in):
                    if needs and g is not None:
                        _hand_on(node, t, parent, g, given_away)
                yield node, g_out, grads_in
            if not retain_graph:
                node.release()
            done += 1
    finally:  # stopped early (an error, or a teaching walk left unfinished): no half-walked graph stays usable
        for node in order[done:] if not retain_graph else ():
            node.release()
        for node in order if retain_graph else ():
            node.out_grad = None


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
    data = t._data
    if g.shape != data.shape:
        raise RuntimeError(f"{node.name}.backward returned a gradient of shape {tuple(g.shape)} "
                           f"for an input of shape {t.shape}")
    if g.dtype != data.dtype:  # mixed-dtype ops: each input's gradient in its own dtype
        g = g.astype(data.dtype)
    if parent is not None:
        parent.out_grad = g if parent.out_grad is None else parent.out_grad + g
        return
    hand_to_leaf(t, g, given_away)


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


def backward(root_tensor, grad, retain_graph=False):
    """The whole walk: fill .grad of every leaf (and retained non-leaf)."""
    for _ in walk(root_tensor, grad, retain_graph):
        pass


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
