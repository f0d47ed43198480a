"""In-place changes, by torch's rules.

`t += x` (and -=, *=, /=) and `t[idx] = v` change t's memory and keep t the
same object, so that whatever holds t (an optimiser, a view of it) sees the
change. Three cases:

1. Nothing to record -- grad mode is off, or neither t nor the value requires
   grad: the array changes in place and t's version goes up (a parameter scaled
   under no_grad, a table of counts filled in a loop).
2. A leaf that requires grad (a parameter), or a view of one, with grad mode on:
   refused, as torch refuses it. Change parameters under no_grad.
3. Otherwise the change is recorded as an op: the op runs on t's old value, the
   result is written into t's memory, and t takes the op's node -- in the graph
   t is now `t_old + x`. If that op's backward reads t's old value (`t *= w` with
   w requiring grad), it gets a copy of it, as torch saves one. Nodes that read t
   before keep their edge to t's old node (autograd.py records each input's node);
   one whose backward reads t's old value finds its version changed and refuses
   backward, naming itself.

Views (basic indexing, view, transpose) share their base's memory, so a change
of one is a change of the other, in the graph too:
- a changed view changes its base: the base takes a ViewWrite node (its old
  value with the view's region replaced by the view's new value), and so on up
  to the tensor that owns the memory;
- a changed tensor's live views are read from it again (a fresh view node on its
  new node), so no view is left on a node that no longer describes its values
  (torch's "view replay"; here _reread_views, since replay names the jit).
"""
import operator

from . import autograd, ops, watch

# symbol -> (the out-of-place operator, recorded in the graph; the array's own in-place one)
ARITHMETIC = {"+=": (operator.add, operator.iadd), "-=": (operator.sub, operator.isub),
              "*=": (operator.mul, operator.imul), "/=": (operator.truediv, operator.itruediv)}


def arithmetic(t, what, other):
    """t += other (or -=, *=, /=), in place; returns t."""
    other = t._lift(other)
    out_of_place, in_place = ARITHMETIC[what]
    if not _recorded(t, other, what):
        watch.array_changed(t, what, Ellipsis, other)
        try:
            in_place(t._data, other._data)
        except TypeError as e:  # numpy's UFuncTypeError: int32 += 0.5 and the like
            raise RuntimeError(f"{what} cannot store a {other.dtype} result in a {t.dtype} tensor "
                               "in place, as torch refuses too: write t = t op x") from e
        t._count_change()
        return t
    watch.tensor_written(t, what)
    new = out_of_place(_before(t), other)
    if new.grad_fn.reads_input(0):  # the write below would change what its backward reads
        new = out_of_place(_before(t, copy=True), other)
    _write(t, new, what)
    return t


def set_item(t, index, value):
    """t[index] = value, in place."""
    value = t._lift(value)
    if not _recorded(t, value, "item assignment"):
        watch.array_changed(t, "item assignment", index, value)
        t._write(value._data, index)
        return
    watch.tensor_written(t, "item assignment")
    _write(t, ops.SetItem.apply(_before(t), value, index=index), "item assignment")


def _recorded(t, value, what):
    """Whether the change goes into the graph (case 3), after refusing case 2."""
    if not autograd.is_grad_enabled():
        return False
    if t._view_of is not None and t.grad_fn is None and t._view_of[0]._requires_grad:
        raise RuntimeError(f"a view was created in no_grad mode and is being changed in place ({what}) with "
                           "grad mode enabled, which torch forbids too: make the view and change it both "
                           "inside `with no_grad():` (not recorded) or both outside (recorded)")
    view = t
    while view is not None:
        if view.grad_fn is None and view._requires_grad:
            whose = "" if view is t else "a view of "
            raise RuntimeError(f"{whose}a leaf tensor that requires grad is being used in an in-place operation "
                               f"({what}): wrap it in `with no_grad():` to change a parameter, as makemore "
                               "does to scale its last layer")
        view = view._view_of[0] if view._view_of is not None else None
    return t._requires_grad or value._requires_grad


def _before(t, copy=False):
    """A tensor standing for t's value before the change: t's node, and t's memory and version
    counter (or, with copy, a copy of the memory with a counter of its own)."""
    if copy:
        return type(t)._wrap(t._data.copy(), t.device, t.grad_fn)
    return type(t)._wrap(t._data, t.device, t.grad_fn, t._version)


def _write(t, new, what):
    """Store the recorded op's result `new` in t's memory and give t its node."""
    if new.dtype.kind == "f" and t.dtype.kind != "f":
        raise RuntimeError(f"{what} cannot store a {new.dtype} result in a {t.dtype} tensor in place")
    t._write(new._data)
    _rebase(t, new.grad_fn)


def _rebase(t, node):
    """t's memory now holds the output of `node`: say so in t's graph, its base's and its views'."""
    if t._view_of is None:
        _take(t, node)
        _reread_views(t)
        return
    base, view_op, options = t._view_of
    holding = type(t)._wrap(t._data, t.device, node, t._version)  # t's new value, as node made it
    written = ops.ViewWrite.apply(_before(base), holding, view=(view_op, options))
    _rebase(base, written.grad_fn)  # the base takes the write; then its views, t among them, are read again


def _take(t, node):
    """t is now the output of node (a retain_grad() moves along: it asks for the newest value's gradient)."""
    old = t.grad_fn
    if old is not None and old.retained is not None and old.retained() is t:
        node.retained, old.retained = old.retained, None
    t.grad_fn, t._requires_grad = node, True


def _reread_views(t):
    """Read each live view of t (and theirs) from t again, so that it takes a node on t's new one."""
    for ref in list(t._views or ()):
        view = ref()
        if view is not None:
            _, view_op, options = view._view_of
            _take(view, view_op.apply(t, **options).grad_fn)
            _reread_views(view)
