"""Optimisers: they read each parameter's gradient and change its values in place,
outside the graph (what `with no_grad(): p -= lr * p.grad` does in a lecture)."""
import math
import numbers
import warnings

from . import backend, watch
from .tensor import Tensor


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
        (group,) = parameter_groups(params, "SGD")
        if set(group) != {"params"}:
            raise TypeError("SGD takes one iterable of parameters, not groups of them (dicts): use Adam or AdamW "
                            "for per-group settings")
        self.params = group["params"]
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
            p._count_change()  # a node that saved p before this step must refuse its backward

    @watch.one_call  # and the clearing, by calling zero_grad() again: on the parameters of that moment
    def zero_grad(self, set_to_none=True):
        """Forget the gradients (None), or with set_to_none=False make them zeros."""
        forget_gradients(self.params, set_to_none)

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


class Adam:
    """torch.optim.Adam (Kingma and Ba 2015), not amsgrad: for each parameter p, at step t,

        g = dL/dp + weight_decay * p            (AdamW instead: p <- p (1 - lr weight_decay))
        m <- m + (1 - beta1) (g - m)            running mean of g       (torch's lerp)
        v <- beta2 v + (1 - beta2) g^2          running mean of g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    the divisions by 1 - beta^t undoing the bias of m and v towards their zero start.
    Parameters come as one iterable or as groups, a list of dicts {"params": [...],
    "weight_decay": ...}, each taking the defaults for what it does not set; the
    hyperparameters are read from param_groups at every step, so a schedule sets
    group["lr"] between steps (and a captured step, replayed by calling step() again,
    follows it)."""

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False,
                        maximize=False)
        self.param_groups = [{**defaults, **group} for group in parameter_groups(params, type(self).__name__)]
        for group in self.param_groups:
            _check_adam_group(group)
        self.state = {}  # parameter -> {"step", "exp_avg", "exp_avg_sq"}, from its first step

    @watch.one_call  # a captured training step replays the update by calling step() again
    def step(self):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, lr, beta1, beta2, eps, weight_decay)

    def _update(self, p, lr, beta1, beta2, eps, weight_decay):
        x, g, number = p._data, p.grad._data, p.dtype.type  # (numbers in p's dtype: float32 stays float32)
        state = self.state.get(p)
        if state is None:
            xp = p.xp
            state = self.state[p] = {"step": 0, "exp_avg": xp.zeros_like(x), "exp_avg_sq": xp.zeros_like(x)}
        state["step"] += 1
        if weight_decay and self.decoupled_weight_decay:
            x *= number(1 - lr * weight_decay)
        elif weight_decay:
            g = g + number(weight_decay) * x
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m += number(1 - beta1) * (g - m)
        v *= number(beta2)
        v += number(1 - beta2) * g * g
        denominator = p.xp.sqrt(v) / number((1 - beta2 ** t) ** 0.5) + number(eps)
        x += number(-lr / (1 - beta1 ** t)) * m / denominator
        p._count_change()  # a node that saved p before this step must refuse its backward

    @watch.one_call  # and the clearing, by calling zero_grad() again
    def zero_grad(self, set_to_none=True):
        """Forget the gradients (None), or with set_to_none=False make them zeros."""
        forget_gradients(self._all_params(), set_to_none)

    def state_dict(self):
        """torch's layout: {"state": {index: {"step", "exp_avg", "exp_avg_sq"}}, "param_groups":
        [hyperparameters, "params": [indices]]}, parameters numbered across the groups in order;
        arrays as host copies."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {index[id(p)]: {"step": float(s["step"]), "exp_avg": backend.to_host(s["exp_avg"]),
                                "exp_avg_sq": backend.to_host(s["exp_avg_sq"])} for p, s in self.state.items()}
        groups = [{**group, "params": [index[id(p)] for p in group["params"]]} for group in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        params = self._all_params()
        self.state = {}
        for i, saved in state_dict["state"].items():
            p = params[int(i)]
            moments = {key: backend.to_array(saved[key], p.dtype, p.device).copy() for key in ("exp_avg", "exp_avg_sq")}
            if any(m.shape != p.shape for m in moments.values()):
                raise ValueError(f"optimizer state {i} does not fit a parameter of shape {p.shape}")
            self.state[p] = {"step": int(saved["step"]), **moments}
        loaded = [{**group, **{key: value for key, value in saved.items() if key != "params"}}
                  for group, saved in zip(self.param_groups, groups)]
        for group in loaded:
            _check_adam_group(group)
        self.param_groups = loaded

    def _all_params(self):
        return [p for group in self.param_groups for p in group["params"]]


class AdamW(Adam):
    """torch.optim.AdamW (Loshchilov and Hutter 2019): Adam whose weight decay shrinks p
    directly, p <- p (1 - lr weight_decay), instead of adding to the gradient, so that it
    is not scaled down by the adaptive denominator. weight_decay 0.01 by default."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


def _check_adam_group(group):
    for name in ("lr", "eps", "weight_decay"):
        value = group[name]
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise ValueError(f"Invalid {name} value: {value!r}")
    if len(group["betas"]) != 2 or not all(0 <= beta < 1 for beta in group["betas"]):
        raise ValueError(f"Invalid beta parameters: {group['betas']!r} (each in [0, 1))")
    for variant in ("amsgrad", "maximize"):  # torch's options this Adam does not have: refused, never ignored
        if group[variant]:
            raise ValueError(f"{variant}=True is not supported: this Adam is Kingma and Ba's, which minimises "
                             f"and keeps no maximum of the squared gradients")


def parameter_groups(params, optimizer):
    """`params` as torch's optimisers take them, one iterable of tensors or a list of dicts
    {"params": ..., setting: value}, as a list of groups (new dicts, "params" a list), checked as
    torch checks them: a lone tensor (whose rows list() would hand out as copies), a set (no fixed
    order), an empty list, something that is not a leaf tensor, or a tensor in two groups (which
    would be stepped twice) is refused."""
    if isinstance(params, Tensor):
        raise TypeError(f"params argument given to the optimizer should be an iterable of Tensors or dicts, "
                        f"but got a Tensor: write {optimizer}([p]), or {optimizer}(model.parameters())")
    groups = list(params)
    if not groups:
        raise ValueError("optimizer got an empty parameter list")
    groups = [dict(group) if isinstance(group, dict) else group for group in groups]
    if not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    seen = set()
    for group in groups:
        if not isinstance(group, dict):
            raise TypeError(f"param groups must all be dicts, got a {type(group).__name__} among them")
        tensors = group["params"]
        if isinstance(tensors, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        group["params"] = [tensors] if isinstance(tensors, Tensor) else list(tensors)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        ids = {id(p) for p in group["params"]}
        if len(ids) != len(group["params"]):
            warnings.warn("optimizer contains a parameter group with duplicate parameters", stacklevel=3)
        if ids & seen:
            raise ValueError("some parameters appear in more than one parameter group")
        seen |= ids
    return groups


def forget_gradients(params, set_to_none=True):
    """torch's zero_grad: each gradient None, or with set_to_none=False zeroed in place (the same
    tensor, as torch's, for code that holds it). Written past the .grad setter (its checks are for
    a user's value), so a caller marked @watch.one_call is seen by a watcher as that one call,
    which a captured step replays."""
    for p in params:
        if p._grad is None:
            continue
        if set_to_none:
            p._grad = None
        else:
            p._grad._data.fill(0)
            p._grad._count_change()
