"""The dilated causal convolution of WaveNet, as one fused node.

Channels last, like the rest of the engine: x is (B, T, C_in), weight is
(K, C_in, C_out), bias (C_out,), and

    out[b, t, o] = bias[o] + sum_{j<K} sum_c x[b, t - d (K-1-j), c] weight[j, c, o]

with x = 0 at negative times (d the dilation). So weight[K-1] multiplies the
current step and weight[0] the step d (K-1) back: position t sees only the
past, and a stack of K = 2 convolutions with dilations 1, 2, 4 sees 8 steps.

The forward is one matrix product. Pad x on the left with P = d (K-1) zero
steps; then tap j reads the padded input shifted by j d, xpad[:, j d : j d + T].
Those K shifted views side by side are the (B T, K C_in) matrix A
("im2col"), weight flattened is the (K C_in, C_out) matrix W, and
out = A @ W + bias: every position of every sequence in one GEMM.
"""
import operator

from .autograd import Function


class Conv1d(Function):
    def forward(self, x, weight, *bias, dilation):
        xp = self.xp
        B, T, C = x.shape
        K, _, C_out = weight.shape
        self.x_shape, self.dilation = x.shape, dilation
        if K == 1:  # a 1x1 convolution is x @ W on its own: no padding to copy
            columns = x.reshape(B * T, C)
        else:
            padded = xp.concatenate([xp.zeros((B, dilation * (K - 1), C), x.dtype), x], axis=1)
            shifted = [padded[:, j * dilation: j * dilation + T] for j in range(K)]
            columns = xp.concatenate(shifted, axis=2).reshape(B * T, K * C)
        self.columns, self.weight = columns, weight
        out = columns @ weight.reshape(K * C, C_out)
        if bias:
            out += bias[0]
        return out.reshape(B, T, C_out)

    def backward(self, g):
        """With A the (n = B T, K C_in) columns, W the flattened weight and G = g
        as (n, C_out), the forward is out = A W + bias, so (as for Linear)

            dW = A^T G,   dbias[o] = sum_i G[i, o],   dA = G W^T.

        A[(b, t), (j, c)] is a copy of x[b, t - d (K-1-j), c] (or of a zero of
        the padding), so each x[b, s, c] receives the dA of every (t, j) that
        copied it: with P = d (K-1),

            dx[b, s, c] = sum_j dA[b, s + P - j d, j, c]   over t = s + P - j d in [0, T),

        which is: add tap j's gradient into the padded shape at offset j d,
        then drop the P padding steps -- the forward's shifted views, reversed."""
        xp, d = self.xp, self.dilation
        B, T, C = self.x_shape
        K, _, C_out = self.weight.shape
        G = g.reshape(B * T, C_out)
        dx = dweight = dbias = None
        if self.needs_grad[0]:
            dA = (G @ self.weight.reshape(K * C, C_out).T).reshape(B, T, K, C)
            if K == 1:
                dx = dA.reshape(B, T, C)
            else:
                dpadded = xp.zeros((B, T + d * (K - 1), C), g.dtype)
                for j in range(K):
                    dpadded[:, j * d: j * d + T] += dA[:, :, j]
                dx = dpadded[:, d * (K - 1):]
        if self.needs_grad[1]:
            dweight = (self.columns.T @ G).reshape(K, C, C_out)
        if len(self.needs_grad) == 3 and self.needs_grad[2]:
            dbias = G.sum(axis=0)
        return (dx, dweight, dbias)[:len(self.needs_grad)]


def conv1d(x, weight, bias=None, dilation=1):
    """Causal, dilated 1-D convolution of channels-last x (B, T, C_in) with
    weight (K, C_in, C_out) and optional bias (C_out,): out is (B, T, C_out).

    In torch terms: conv1d(pad_left(x.transpose(1, 2), dilation * (K - 1)),
    weight.permute(2, 1, 0), bias, dilation=dilation).transpose(1, 2)."""
    try:
        dilation = operator.index(dilation)
    except TypeError:
        raise TypeError(f"conv1d dilation must be an integer, not {dilation!r}") from None
    if dilation < 1:
        raise ValueError(f"conv1d dilation must be at least 1, got {dilation}")
    if weight.ndim != 3:
        raise ValueError(f"conv1d weight must be (K, C_in, C_out), got shape {weight.shape}")
    K, C_in, C_out = weight.shape
    if K < 1:
        raise ValueError(f"conv1d needs a kernel of at least 1 step, got weight of shape {weight.shape}")
    if x.ndim != 3 or x.shape[2] != C_in:
        raise ValueError(f"conv1d expects input (B, T, C_in={C_in}) for weight of shape {weight.shape}, "
                         f"got {x.shape}")
    if bias is None:
        return Conv1d.apply(x, weight, dilation=dilation)
    if bias.shape != (C_out,):
        raise ValueError(f"conv1d bias must be (C_out,) = ({C_out},), got {bias.shape}")
    return Conv1d.apply(x, weight, bias, dilation=dilation)
