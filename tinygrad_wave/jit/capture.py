"""The public capture: a function wrapped so that its first two calls for an argument
signature run eagerly and are recorded (record.py), and later ones replay (replay.py)."""
import functools
from collections import OrderedDict

from .. import autograd, backend, watch
from ..tensor import Tensor
from .record import Recorder
from .replay import EAGER, Replay


def capture(fn=None, *, cache_size=4):
    """Wrap `fn` (positional arguments: tensors, arrays, hashable values) for capture
    and replay. Usable as `@capture` or `@capture(cache_size=...)`: that many
    signatures keep their replay, the least recently captured goes first."""
    if isinstance(cache_size, bool) or not isinstance(cache_size, int):
        raise TypeError(f"capture's cache_size must be an int, not {type(cache_size).__name__} {cache_size!r}")
    if cache_size < 1:
        raise ValueError(f"capture's cache_size must be at least 1 (replays kept per function), not {cache_size}")
    if fn is None:
        return functools.partial(capture, cache_size=cache_size)
    return Captured(fn, cache_size)


class Captured:
    """fn, with its captured replays by argument signature."""

    def __init__(self, fn, cache_size):
        functools.update_wrapper(self, fn)
        self.fn, self.cache_size = fn, cache_size
        self.replays, self.recorded = OrderedDict(), OrderedDict()  # signature -> Replay; -> its first recording
        self.replayed = self.eager = 0  # how many calls ran each way

    def reset(self):
        """Forget every capture: the next two calls record afresh."""
        self.replays.clear()
        self.recorded.clear()

    def __call__(self, *args):
        if watch.watcher is not None:  # inside another capture (which records our ops), or a trace: run inline
            return self.fn(*args)
        key = signature(args)
        replay = self.replays.get(key)
        if replay is not None:
            result = replay(args)
            if result is not EAGER:
                self.replayed += 1
                return result
        self.eager += 1
        if replay is not None:  # a guard failed: eager mode raises its own error (or is right)
            return self.fn(*args)
        recorder = Recorder(args)
        result = recorder.run(self.fn)
        first = self.recorded.pop(key, None)
        if first is None:
            self.recorded[key] = recorder
        else:
            self.replays[key] = Replay(first, recorder)
        for kept in (self.recorded, self.replays):  # new shapes at every call must not pile up
            if len(kept) > self.cache_size:
                kept.popitem(last=False)
        return result


def signature(args):
    """What a replay is specific to: grad mode, each argument's shape, dtype and device (a
    Python value, or a 0-d array, itself), and which arguments are the same array (a replay
    reads each once)."""
    key, seen = [autograd.is_grad_enabled()], {}
    for k, a in enumerate(args):
        if isinstance(a, Tensor):
            key.append((a._data.shape, a._data.dtype, a.device, a._requires_grad, seen.setdefault(id(a._data), k)))
        elif backend.is_array(a) and a.ndim == 0:  # a number Python may read (float(lr)): keyed by value
            key.append(("value", a.dtype, type(a), a.item()))
        elif backend.is_array(a):
            key.append((a.shape, a.dtype, type(a), seen.setdefault(id(a), k)))  # (the type: numpy or cupy)
        else:
            try:
                hash(a)
            except TypeError:
                raise TypeError(f"a captured function takes tensors, arrays and hashable values, "
                                f"not {type(a).__name__}") from None
            key.append(("value", type(a), a))
    return tuple(key)
