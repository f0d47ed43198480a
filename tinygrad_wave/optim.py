"""Optimisers: they read each parameter's gradient and change its values in place,
outside the graph (what `with no_grad(): p -= lr * p.grad` does in a lecture)."""
import math
import numbers

from . import backend, watch


class SGD(watch.Stateful):
    """torch.optim.SGD's update (dampening 0, not Nesterov), for each parameter p:

        g = dL/dp + weight_decay * p
        v = g at the first step, then momentum * v + g     (only when momentum > 0)
        p <- p - lr * v

    The velocities v are state: state_dict() holds them so that a resumed run
    takes exactly the steps an unbroken one would."""

    def __init__(self, params, lr, momentum=0, weight_decay=0):
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise ValueError(f"SGD {name} must be a finite number >= 0, got {value!r}")
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocities = [None] * len(self.params)

    @watch.one_call  # a captured training step replays the update by calling step() again
    def step(self):
        """Update every parameter that has a gradient, in place."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad._data
            if self.weight_decay:
                g = g + self.weight_decay * p._data
            if self.momentum:
                v = self.velocities[i]
                if v is None:
                    v = self.velocities[i] = g.copy()  # a copy: the optimiser owns its state
                else:
                    v *= self.momentum
                    v += g
                g = v
            p._data -= self.lr * g
            p._version[0] += 1  # a node that saved p before this step must refuse its backward

    @watch.one_call  # and the clearing, by calling zero_grad() again: on the parameters of that moment
    def zero_grad(self):
        """Forget the gradients: the next backward starts from nothing (torch's set_to_none)."""
        for p in self.params:
            p._grad = None  # (None needs none of the setter's checks; a watcher saw this call as one)

    def state_dict(self):
        """The velocities as host arrays, by parameter position (none before the first step)."""
        return {f"velocity.{i}": backend.to_host(v) for i, v in enumerate(self.velocities) if v is not None}

    def load_state_dict(self, state):
        unexpected = set(state) - {f"velocity.{i}" for i in range(len(self.params))}
        if unexpected:
            raise KeyError(f"optimizer state does not fit these {len(self.params)} parameters: "
                           f"unexpected {sorted(unexpected)}")
        for i, p in enumerate(self.params):
            v = state.get(f"velocity.{i}")
            if v is not None and tuple(v.shape) != p.shape:
                raise ValueError(f"optimizer state velocity.{i} has shape {tuple(v.shape)}, "
                                 f"the parameter's {p.shape}")
            self.velocities[i] = None if v is None else backend.to_array(v, p.dtype, p.device).copy()
