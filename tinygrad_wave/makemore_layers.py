"""The makemore lectures' own layers (parts 3 to 5), with their names and behaviour:
Linear with weight (fan_in, fan_out) drawn as randn / sqrt(fan_in), BatchNorm1d
with gamma, beta and the lecture's dims, Embedding, FlattenConsecutive, Tanh and
Sequential(list of layers); and this project's Conv1d and Dropout in the same
style. They stand on a small Module base that finds parameters and buffers by
walking attributes. torch's own classes, with torch's initialisation and
torch's module system, are in nn/.

As in the notebooks, every layer keeps its last output in `self.out`, so that
a learner can look at (and `retain_grad()` on) what each layer produced.
"""
from . import backend, watch
from . import functional as F
from .creation import ones, zeros
from .random import randn
from .tensor import Tensor


class Module(watch.Stateful):
    training = True
    _buffer_names = ()  # tensor attributes that are state but not trained

    def __call__(self, *args):
        out = self.forward(*args) if watch.watcher is None else watch.watcher.module_called(self, args)
        self.__dict__["out"] = out  # kept for the learner to look at, not state: no watcher is told
        return out

    def extra_repr(self):
        """The arguments shown between the parentheses of repr(layer)."""
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def named_children(self):
        """(name, module) for each module directly below this one, in an attribute or in a
        list of modules (Sequential.layers: "layers.0", ...), in the order they were set."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{name}.{i}", v) for i, v in enumerate(value) if isinstance(v, Module))

    def named_modules(self, prefix=""):
        """(dotted path, module) for this module and every module below it."""
        yield prefix, self
        for path, child in self.named_children():
            yield from child.named_modules(f"{prefix}{path}.")

    def named_tensors(self):
        """(dotted name, tensor, is_buffer) in definition order: weight before bias,
        gamma before beta, layer by layer. A tensor shared by two layers comes once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                # `out` is the layer's last output, kept for the learner to look at: not state
                if isinstance(value, Tensor) and name != "out" and id(value) not in seen:
                    seen.add(id(value))
                    yield prefix + name, value, name in module._buffer_names

    def parameters(self):
        return [t for _, t, is_buffer in self.named_tensors() if not is_buffer]

    def buffers(self):
        return [t for _, t, is_buffer in self.named_tensors() if is_buffer]

    def train(self, mode=True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device=None, dtype=None):
        """Move or cast every parameter and buffer in place (optimisers keep working).
        All or nothing: every new array is made before any tensor changes."""
        tensors = [t for _, t, _ in self.named_tensors()]
        converted = [t._converted(device, dtype) for t in tensors]
        for t, (data, grad) in zip(tensors, converted):
            t._grad, t.device = grad, device or t.device
            t._replace(data)
        return self

    def state_dict(self):
        return {name: t.numpy() for name, t, _ in self.named_tensors()}

    def load_state_dict(self, state):
        own = {name: t for name, t, _ in self.named_tensors()}
        missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
        if missing or unexpected:
            raise KeyError(f"state_dict does not fit this model: missing {sorted(missing)}, "
                           f"unexpected {sorted(unexpected)}")
        for name, t in own.items():
            array = backend.to_array(state[name], t.dtype, t.device)
            if array.shape != t.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {tuple(array.shape)}, the model's {t.shape}")
            t._write(array)  # copied in: the model never shares memory with the dict


class Linear(Module):
    def __init__(self, fan_in, fan_out, bias=True):
        # divided by sqrt(fan_in) so that x @ weight keeps unit variance (Kaiming-style)
        self.weight = Tensor(randn(fan_in, fan_out)._data / fan_in ** 0.5, requires_grad=True)
        self.bias = zeros(fan_out, requires_grad=True) if bias else None

    def extra_repr(self):
        fan_in, fan_out = self.weight.shape
        return f"in_features={fan_in}, out_features={fan_out}, bias={self.bias is not None}"

    def forward(self, x):
        out = x @ self.weight
        return out if self.bias is None else out + self.bias


class BatchNorm1d(Module):
    _buffer_names = ("running_mean", "running_var")

    def __init__(self, dim, eps=1e-5, momentum=0.1):
        self.eps = eps
        self.momentum = momentum
        self.gamma = ones(dim, requires_grad=True)
        self.beta = zeros(dim, requires_grad=True)
        self.running_mean = zeros(dim)
        self.running_var = ones(dim)

    def extra_repr(self):
        return f"{self.gamma.shape[0]}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        # statistics per channel (the last dim): over the batch for (B, C), and
        # over batch and time for (B, T, C) -- the bug makemore part 5 fixes
        dims = {2: (0,), 3: (0, 1)}.get(x.ndim)
        if dims is None:
            raise ValueError(f"BatchNorm1d expects input of shape (B, C) or (B, T, C), got {x.shape}")
        return F.batch_norm(x, self.gamma, self.beta, dims, self.eps, correction=1,
                            running_mean=self.running_mean, running_var=self.running_var,
                            momentum=self.momentum, training=self.training)


class Tanh(Module):
    def forward(self, x):
        return x.tanh()


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim):
        self.weight = randn(num_embeddings, embedding_dim, requires_grad=True)

    def extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"

    def forward(self, IX):
        return F.embedding(IX, self.weight)


class FlattenConsecutive(Module):
    def __init__(self, n):
        self.n = n

    def extra_repr(self):
        return str(self.n)

    def forward(self, x):
        """(B, T, C) -> (B, T // n, C * n): n neighbouring steps side by side."""
        if x.ndim != 3 or x.shape[1] % self.n:
            raise ValueError(f"FlattenConsecutive({self.n}) expects (B, T, C) with T divisible "
                             f"by {self.n}, got {x.shape}")
        B, T, C = x.shape
        if T == self.n:  # one group left: (B, 1, C * n) squeezed to (B, C * n), in one view
            return x.view(B, C * self.n)
        return x.view(B, T // self.n, C * self.n)


class Conv1d(Module):
    """Causal dilated convolution over (B, T, C) (see tinygrad_wave/conv.py):
    weight (K, C_in, C_out), so weight[K-1] multiplies the current step."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, bias=True):
        if kernel_size < 1 or dilation < 1:
            raise ValueError(f"Conv1d needs kernel_size >= 1 and dilation >= 1, got {kernel_size} and {dilation}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation = kernel_size, dilation
        # each output sums K * C_in products: divide by its square root, as Linear does by fan_in
        fan_in = kernel_size * in_channels
        self.weight = Tensor(randn(kernel_size, in_channels, out_channels)._data / fan_in ** 0.5, requires_grad=True)
        self.bias = zeros(out_channels, requires_grad=True) if bias else None

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.dilation)

    def extra_repr(self):
        extra = (f", dilation={self.dilation}" if self.dilation != 1 else "") + ("" if self.bias is not None else ", bias=False")
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}{extra}"


class Dropout(Module):
    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    def __init__(self, *layers):
        # makemore passes one list, torch the layers themselves: both work
        self.layers = list(layers[0]) if len(layers) == 1 and isinstance(layers[0], (list, tuple)) else list(layers)

    def __repr__(self):
        lines = "".join(f"\n  ({i}): " + repr(layer).replace("\n", "\n  ") for i, layer in enumerate(self.layers))
        return f"Sequential({lines}\n)"

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
