"""torch.nn's layers, with torch's shapes, defaults and initialisation: what "Let's
build GPT" uses (Linear, Embedding, LayerNorm, Dropout, ReLU, GELU) and BatchNorm1d
and Tanh. Each forward is one call into functional.py, where the ops are.

(makemore's own Linear, BatchNorm1d and the others, which differ from these in
shapes and initialisation, are in makemore_layers.py.)
"""
import math

from .. import functional as F
from ..creation import ones, zeros
from . import init
from .module import Module, Parameter


def _empty(*shape, dtype=None, device="cpu"):
    """A parameter's tensor before its init fills it."""
    return zeros(*shape, dtype=dtype, device=device)


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features). Initialised as torch's:
    weight kaiming-uniform (a = sqrt(5)), bias uniform in +-1/sqrt(in_features)."""

    def __init__(self, in_features, out_features, bias=True, device="cpu", dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty(out_features, in_features, dtype=dtype, device=device))
        self.register_parameter("bias", Parameter(_empty(out_features, dtype=dtype, device=device)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of num_embeddings rows of embedding_dim numbers, read by integer ids; rows N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim, device="cpu", dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_empty(num_embeddings, embedding_dim, dtype=dtype, device=device))
        init.normal_(self.weight)

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Each position normalised over its last dims (normalized_shape), then weight * xhat + bias;
    weight ones, bias zeros."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device="cpu", dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.register_parameter("weight", Parameter(ones(shape, dtype=dtype, device=device)) if elementwise_affine else None)
        self.register_parameter("bias", Parameter(zeros(shape, dtype=dtype, device=device))
                                if elementwise_affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class BatchNorm1d(Module):
    """torch's: input (N, C) or (N, C, L), statistics per channel (dim 1) over every other dim;
    normalises by the biased variance, moves running_var towards the unbiased one."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device="cpu", dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", Parameter(ones(num_features, dtype=dtype, device=device)) if affine else None)
        self.register_parameter("bias", Parameter(zeros(num_features, dtype=dtype, device=device)) if affine else None)
        tracked = [zeros(num_features, dtype=dtype, device=device), ones(num_features, dtype=dtype, device=device),
                   zeros((), dtype="int64", device=device)] if track_running_stats else [None] * 3
        for name, tensor in zip(("running_mean", "running_var", "num_batches_tracked"), tracked):
            self.register_buffer(name, tensor)

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L), got {x.shape}")
        dims = (0,) if x.ndim == 2 else (0, 2)
        if self.training and x.numel() == self.num_features:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
        channel = (-1, 1) if x.ndim == 3 else (-1,)  # weight and bias along dim 1
        weight = ones(self.num_features, dtype=x.dtype, device=x.device) if self.weight is None else self.weight
        bias = zeros(self.num_features, dtype=x.dtype, device=x.device) if self.bias is None else self.bias
        use_batch = self.training or not self.track_running_stats
        running = dict(running_mean=self.running_mean, running_var=self.running_var) if (
            self.track_running_stats) else {}
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # torch's cumulative average: batch k moves the running stats by 1/k
                momentum = 1.0 / self.num_batches_tracked.item()
        return F.batch_norm(x, weight.view(channel), bias.view(channel), dims, self.eps, correction=0,
                            momentum=momentum, training=use_batch, **running)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.affine}, track_running_stats={self.track_running_stats}")


class Dropout(Module):
    """In training, each element zeroed with probability p and the rest scaled by 1 / (1 - p)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace=False"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    def forward(self, x):
        return x.tanh()
