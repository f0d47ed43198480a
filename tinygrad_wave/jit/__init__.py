"""Capture a training step once, then replay its array work without the graph bookkeeping.

    step = jit.capture(train_step)       # or @jit.capture above `def train_step(xb, yb): ...`
    loss = step(xb, yb)                  # calls 1 and 2 run eagerly and are recorded; later calls replay

The jit is a listener on the engine's seam (tinygrad_wave/watch.py), in three parts:
record.py (a Watcher turning one eager call into named events), replay.py (two
recordings that agree, compiled into steps over arrays) and capture.py (the wrapper,
its signatures and cache).

What is captured. While fn runs eagerly, every op is recorded in order (its class,
its options, and where each input array came from: an argument of the call, an
earlier op's output, or a tensor from outside such as a parameter), and so is each
backward walk (the nodes in the walk's order and where each gradient goes), each
`.grad = None`, each attribute of a module or optimiser set to a number, string,
bool or None (`opt.lr = lr`, `model.eval()`), and each call of a method marked
`@watch.one_call` (the optimiser's step and zero_grad).

What is replayed. The same forward and backward methods of the same ops, on the new
arguments' arrays, in the same order, with the gradients summed in the same order
and handed to the leaves by the walk's own rule; the attribute assignments; in-place
changes outside the graph (`ids[:, 0] = 27`, `t += 1` where no gradient is involved)
of tensors the call's ops made or it was given, at their place among the ops; and
optimizer.zero_grad() and .step() themselves, on the parameters of that moment. So
a replay is bit-identical to the eager step: the same arithmetic on the same arrays.

Guarded on every call. Arguments of another shape, dtype or device (or another
Python value or 0-d array, another grad mode, or other arguments that are the same array) are
another signature: captured again, a few kept. Indices and targets taken from the
arguments pass their op's own replay check first (Function.replay_check; an op
without one is refused at capture); a bad one makes the call run eagerly, which
raises eager's own error. Those computed inside fn (`targets.view(-1)`, positions
from `arange`) are checked at their op's own step, where they first exist: a bad
one raises IndexError there, after what came before it ran, as in eager mode. A
tensor from outside whose array was replaced (`.data =`, Module.to) or whose
requires_grad changed, or a module whose train/eval mode changed since capture,
raises CaptureError (`step.reset()` captures again).

Refused with CaptureError, never replayed wrongly: reading a value inside fn
(.item(), .numpy(), bool(t), .data of a tensor it computed: Python could branch on
it or keep it), drawing host randomness (dropout, randn; Python's `random` or NumPy's
global state changed by a recorded call), changing a tensor's data outside the ops
(`.data =`; in place, a parameter, a buffer, a gradient, a tensor made by zeros() or
the like, one that the graph records, or at an index array; a parameter's array
written by a method without @watch.one_call) or its requires_grad, an argument that
is a parameter's array, setting .grad to an array or an attribute to anything but a
plain value, a computed tensor kept in a list, set or dict, retain_grad(), a backward
that reaches ops from before the call, and two recorded calls that differ (other ops
or shapes: data-dependent control flow; a tensor made inside fn whose values differ
between the calls).

A captured forward (the loss and backward outside, as torch.compile(model) is used):
a returned tensor that had a graph in eager mode comes back from a replay with one
node whose backward is the recorded walk over the replay's saved arrays, handing
the parameters (and tensor arguments) their gradients; it refuses a backward after
the next call (which replaced those arrays) or after an in-place change of what it
reads, as eager mode refuses the latter.

Not seen, so frozen at capture: Python state that fn reads without tensors or the
objects above (a global number, a private numpy.random.Generator), values read in
Python from an array argument of 1 or more dims, and an array computed outside the
ops from the data that happened to be equal on both recorded calls. Layers' `.out`
keep the tensors of the last eager call: replays make no tensors.

On a GPU a batch-32 step is bound by kernel launches, and a replay is a fixed
sequence of launches on arrays of fixed shapes: what a CUDA graph records. To
capture one replay under cupy's stream capture and launch it as one graph, the
batch must be copied into fixed input buffers (a graph replays fixed
addresses), the output arrays must stay put between steps (CuPy's memory pool
usually hands back the same blocks, a graph needs that guaranteed), and the range
checks, which read min and max back to the host, must run on the host's batch
indices before the launch.
"""
from .capture import Captured, capture
from .record import CaptureError

__all__ = ["capture", "Captured", "CaptureError"]
