"""Fused ops: each is one node whose backward is a closed form, derived on
paper, instead of the chain of small nodes the forward would otherwise make.
Fewer nodes, fewer temporaries, and the formula itself is the lesson.
"""
import math
from functools import lru_cache

from . import backend
from .autograd import Function
from .conv import conv1d  # noqa: F401 (F.conv1d, as in torch.nn.functional)
from .methods import _broadcasts_to
from .ops import matvec_sum, max_kept, normalize_dims, sum_of_products, unbroadcast
from .random import rand
from .tensor import Tensor
from .toplevel import sigmoid, tanh  # noqa: F401 (F.tanh and F.sigmoid, as torch.nn.functional has them)


IGNORE_INDEX = -100  # torch's default: a row with this target adds nothing to the loss (padding)


def _class_ids(targets, n, classes, device, ignore_index):
    """Targets as an integer array on `device` of n class ids in [0, classes) or
    ignore_index, or a clear error."""
    targets = backend.to_array(targets._data if isinstance(targets, Tensor) else targets, device=device)
    if not backend.is_integer(targets.dtype):
        raise TypeError(f"targets must be integer class ids, not {targets.dtype}")
    if targets.shape != (n,):
        raise ValueError(f"targets of shape {tuple(targets.shape)} do not fit logits with {n} rows")
    if not _valid_class_ids(targets, classes, ignore_index):
        real = targets[targets != ignore_index]
        raise IndexError(f"target class ids must lie in [0, {classes}) (or be ignore_index={ignore_index}), "
                         f"got values from {int(real.min())} to {int(real.max())}")
    return targets


def _valid_class_ids(targets, classes, ignore_index):
    """Ids in [0, classes) or ignore_index; the usual case (all class ids) checked without a masked copy."""
    return backend.in_range(targets, classes) or backend.in_range(targets[targets != ignore_index], classes)


class CrossEntropy(Function):
    saves_inputs = False

    @classmethod
    def replay_check(cls, option, options, in_shapes):
        """Integer targets from the arguments: checked as cross_entropy checks them."""
        if option == "targets" and backend.is_integer(options["targets"].dtype):
            classes, ignore_index = in_shapes[0][1], options["ignore_index"]
            return lambda targets: _valid_class_ids(targets, classes, ignore_index)
        return None

    def forward(self, logits, targets, ignore_index, reduction, label_smoothing):
        """loss_row = logsumexp(z) - z[y], z a row of logits, y its target: the negative
        log-likelihood of y under softmax(z). With label smoothing s, the target is spread:
        loss_row = (1 - s)(logsumexp(z) - z[y]) + s mean_k (logsumexp(z) - z_k). A row whose
        target is ignore_index has no loss. The loss is the mean over the n kept rows, their sum,
        or (reduction "none") every row's own, 0 where ignored.
        Subtracting the row max first keeps exp() from overflowing; it cancels."""
        xp = self.xp
        shifted = logits - max_kept(xp, logits, 1)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        self.probs = exp / total
        self.reduction, self.smoothing = reduction, label_smoothing
        kept = targets != ignore_index
        if kept.all():  # the usual case: every row counts
            self.rows, self.targets = xp.arange(logits.shape[0]), targets.copy()  # by value: the caller may reuse its array
            self.ignored = None
        else:
            self.rows, self.targets = xp.flatnonzero(kept), targets[kept]
            self.ignored = xp.flatnonzero(~kept)
        log_total = xp.log(total[self.rows, 0])
        losses = -(shifted[self.rows, self.targets] - log_total)
        if label_smoothing:
            losses = (1 - label_smoothing) * losses - label_smoothing * (shifted[self.rows].mean(axis=1) - log_total)
        if reduction == "none":
            out = xp.zeros(logits.shape[0], dtype=logits.dtype)
            out[self.rows] = losses
            return out
        return xp.asarray(losses.sum() if reduction == "sum" else losses.mean())

    def backward(self, g):
        """For one row z with target y, loss_row = logsumexp(z) - z_y, where
        logsumexp(z) = log sum_k e^(z_k). Its derivative is a softmax:

            d logsumexp / d z_k = e^(z_k) / sum_j e^(z_j) = p_k
            d z_y / d z_k       = [k == y]

        so d loss_row / d z_k = p_k - [k == y], and the mean over the n kept
        rows divides by n:  dz_k = g (p_k - [k == y]) / n; an ignored row is
        in no term, so its gradient is 0. (Saved p is not changed: backward
        may run again on a retained graph.)

        With label smoothing s, the target is spread over the C classes: [k == y]
        becomes (1 - s) [k == y] + s / C. A sum of the rows' losses scales each
        row by g instead of g / n, and reduction "none" by the row's own g."""
        if self.reduction == "none":
            grad = self.probs * g[:, None]
            share = g[self.rows]
        else:
            share = g / self.rows.shape[0] if self.reduction == "mean" else g
            grad = self.probs * share
        if self.smoothing:
            grad[self.rows, self.targets] -= (1 - self.smoothing) * share
            grad[self.rows] -= (self.smoothing / grad.shape[1]) * (share[:, None] if self.reduction == "none" else share)
        else:
            grad[self.rows, self.targets] -= share
        if self.ignored is not None:
            grad[self.ignored] = 0
        return (grad,)


REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(input, target, ignore_index=IGNORE_INDEX, reduction="mean", label_smoothing=0.0):
    """The negative log-likelihood of integer class ids `target` under softmax(`input`), as torch's:
    input (N, C) with target (N,), one example's (C,) with a 0-d target, or (N, C, d1, ...) with
    target (N, d1, ...), the classes along dim 1. Rows whose target is ignore_index are left out.
    reduction: "mean" over the rows kept, "sum", or "none" (one loss per row, shaped as target)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    logits, target_shape = _rows_of_classes(input)
    n, classes = logits.shape
    if not isinstance(target, Tensor):
        target = backend.to_array(target, device=input.device)  # (an array there stays itself: a captured
        # step knows its arguments' arrays)
    if tuple(target.shape) != target_shape:
        raise ValueError(f"targets of shape {tuple(target.shape)} do not fit logits of shape {tuple(input.shape)}: "
                         f"expected {target_shape}")
    if len(target_shape) != 1:
        target = target.reshape(n)  # (on a tensor, an op: a captured step follows it to its argument)
    targets = _class_ids(target, n, classes, logits.device, ignore_index)
    loss = CrossEntropy.apply(logits, targets=targets, ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=label_smoothing)
    return loss.reshape(target_shape) if reduction == "none" else loss


def _rows_of_classes(input):
    """input as (rows, C) logits, and the shape a target of one class id per row has."""
    if input.ndim == 1:
        return input.reshape(1, -1), ()
    if input.ndim == 2:
        return input, (input.shape[0],)
    if input.ndim == 0:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), (C,) or (N, C, d1, ...), got {input.shape}")
    for d in range(1, input.ndim - 1):  # the class dim to the end, the others in order
        input = input.transpose(d, d + 1)
    return input.reshape(-1, input.shape[-1]), input.shape[:-1]


SHIFT_SPREAD = 8.0  # how far below the array's max a row's max may lie for softmax to shift by the array's max
SHORT_ROW = 1024  # rows of at most this many numbers: finding each one's max is what costs (NumPy)


def shifted_exps(xp, x, dim):
    """e^(x - c) and its sums along dim, for a shift c that cancels in softmax's ratio,
    e^(x_i - c) / sum_k e^(x_k - c) = e^(x_i) / sum_k e^(x_k), and keeps exp() from overflowing
    when it is at least every x_k. The usual c is each row's own max. For short float32 or
    float64 rows on the CPU, the max of the whole array serves as well when every row's max lies
    within SHIFT_SPREAD of it, which the sums tell: a row's sum of n exps lies between
    e^(its max - c) and n e^(its max - c). Then every output that torch gives as a normal
    float32 is nonzero here too, and those above 1e-34 are as precise as torch's.

    Why: NumPy finds the array's max in one pass, and the rows' maxima in one call a row plus a
    gather (with the subtraction, 12 us against 50 on gpt.py's (16, 64, 64) scores, one thread)."""
    if _short_float_rows_on_cpu(x, dim):
        top = x.max()
        if xp.isfinite(top):
            exp, total = _exps_and_sums(xp, x - top, dim)
            if total.min() >= x.shape[dim] * math.exp(-SHIFT_SPREAD):
                return exp, total
    return _exps_and_sums(xp, x - max_kept(xp, x, dim), dim)


def _short_float_rows_on_cpu(x, dim):
    return (backend.device_of(x) == "cpu" and x.size > 0 and x.shape[dim] <= SHORT_ROW
            and x.dtype.name in ("float32", "float64"))


def _exps_and_sums(xp, shifted, dim):
    xp.exp(shifted, out=shifted)  # (in place: shifted is a new array, so no second one is needed)
    return shifted, matvec_sum(xp, shifted, (dim,))


class Softmax(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x, dim):
        self.dim = dim
        exp, total = shifted_exps(self.xp, x, dim)
        exp /= total
        self.out = exp
        return self.out

    def backward(self, g):
        """y_i = e^(x_i) / sum_k e^(x_k) along the dim. By the quotient rule
            dy_i / dx_j = y_i [i == j] - y_i y_j = y_i ([i == j] - y_j),
        so dx_j = sum_i g_i y_i ([i == j] - y_j) = y_j (g_j - sum_i g_i y_i)."""
        y = self.out
        dx = g - sum_of_products(self.xp, g, y, (self.dim,))
        dx *= y
        return (dx,)


def softmax(x, dim):
    """exp(x) / sum(exp(x)) along one dim."""
    if not isinstance(dim, int):
        raise TypeError(f"softmax takes one dim, an int, not {dim!r}")
    return Softmax.apply(x, dim=normalize_dims(dim, x.ndim)[0])


class LogSoftmax(Function):
    saves_inputs = False
    saves_output = True

    def forward(self, x, dim):
        xp = self.xp
        self.dim = dim
        shifted = x - max_kept(xp, x, dim)  # the max cancels; exp() cannot overflow
        shifted -= xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.out = shifted
        return self.out

    def backward(self, g):
        """y_i = x_i - log sum_k e^(x_k) along the dim:  dy_i/dx_j = [i == j] - p_j with
        p = softmax(x) = e^y, so dx_j = g_j - p_j sum_i g_i."""
        return (g - self.xp.exp(self.out) * g.sum(axis=self.dim, keepdims=True),)


def log_softmax(x, dim):
    """log(softmax(x)) along one dim, computed without taking the log of a rounded-to-0 softmax."""
    if not isinstance(dim, int):
        raise TypeError(f"log_softmax takes one dim, an int, not {dim!r}")
    return LogSoftmax.apply(x, dim=normalize_dims(dim, x.ndim)[0])


class BatchNorm(Function):
    def forward(self, x, gamma, beta, dims, eps, correction, running):
        """y = gamma * xhat + beta,  xhat = (x - mean) / sqrt(var + eps),
        mean and var over `dims`, var = sum((x - mean)^2) / (n - correction)."""
        n = math.prod(x.shape[d] for d in dims)
        if n - correction <= 0:
            raise ValueError(f"batch norm in training needs more than {correction} value(s) per "
                             f"channel, got input of shape {tuple(x.shape)} reduced over dims {dims}")
        mean = x.sum(axis=dims, keepdims=True) / n  # sum / n: numpy's mean() is slower
        centered = x - mean
        var = (centered * centered).sum(axis=dims, keepdims=True) / (n - correction)
        self.inv_std = (var + eps) ** -0.5
        self.xhat = centered * self.inv_std
        self.gamma, self.shapes, self.dims, self.n, self.correction = gamma, (gamma.shape, beta.shape), dims, n, correction
        if running is not None:  # as torch's F.batch_norm: update the buffers in place
            running_mean, running_var, momentum = running[0]._data, running[1]._data, running[2]
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(running_mean.shape)
            # torch's rule: the running variance is the unbiased one, whatever var divides by
            unbiased = var if correction == 1 else var * ((n - correction) / (n - 1))
            running_var *= 1 - momentum
            running_var += momentum * unbiased.reshape(running_var.shape)
        return gamma * self.xhat + beta

    def backward(self, g):
        """Over the n reduced elements i of a channel, with c = correction and
        s = 1 / sqrt(var + eps), the forward is
            mean = sum_i x_i / n,   var = sum_i (x_i - mean)^2 / (n - c),
            xhat_i = (x_i - mean) s,   y_i = gamma xhat_i + beta.
        Backward, one step at a time (g_i = dL/dy_i):
            dbeta  = sum_i g_i,   dgamma = sum_i g_i xhat_i,   dxhat_i = gamma g_i
            dvar   = sum_i dxhat_i (x_i - mean) (-1/2) s^3
            dmean  = -s sum_i dxhat_i  +  dvar * (-2) sum_i (x_i - mean) / (n - c)
                   = -s sum_i dxhat_i      (sum_i (x_i - mean) = 0: the mean term drops out)
            dx_i   = dxhat_i s + dvar 2 (x_i - mean) / (n - c) + dmean / n
        Writing x_i - mean = xhat_i / s and collecting terms gives the closed form

            dx_i = gamma s (g_i - sum_j g_j / n - xhat_i sum_j g_j xhat_j / (n - c))

        (makemore part 4's formula, with n - 1 generalised to n - c)."""
        xhat, dims = self.xhat, self.dims
        sum_g = g.sum(axis=dims, keepdims=True)
        sum_g_xhat = (g * xhat).sum(axis=dims, keepdims=True)
        dx = (self.gamma * self.inv_std) * (g - sum_g / self.n - xhat * (sum_g_xhat / (self.n - self.correction)))
        gamma_shape, beta_shape = self.shapes
        return dx, unbroadcast(sum_g_xhat, gamma_shape), unbroadcast(sum_g, beta_shape)


@lru_cache(maxsize=256)
def _stats_shape(x_shape, dims, gamma_shape, beta_shape):
    """The shape of the per-channel statistics (x's shape with the reduced dims
    set to 1), once gamma and beta are checked to fit it. Cached: a training
    loop asks about the same shapes at every step."""
    stats_shape = tuple(1 if d in dims else n for d, n in enumerate(x_shape))
    for shape, name in ((gamma_shape, "gamma"), (beta_shape, "beta")):
        aligned = (1,) * (len(x_shape) - len(shape)) + shape
        if len(aligned) != len(x_shape) or any(a not in (1, s) for a, s in zip(aligned, stats_shape)):
            raise ValueError(f"batch_norm {name} of shape {shape} does not fit input {x_shape} "
                             f"normalised over dims {dims}: expected one value per channel {stats_shape}")
    return stats_shape


def batch_norm(x, gamma, beta, dims, eps=1e-5, correction=1, *,
               running_mean=None, running_var=None, momentum=0.1, training=True):
    """Normalise x over `dims` (an int or a tuple), then scale by gamma and shift by beta.

    gamma and beta hold one value per channel: they broadcast against x and
    must not vary along the reduced dims. In training the batch statistics are
    used (and the running buffers, when given, move towards them by `momentum`,
    the variance in its unbiased form whatever `correction` is, as torch's);
    otherwise the running buffers are used, as plain composed ops."""
    dims = normalize_dims(dims, x.ndim)
    stats_shape = _stats_shape(x.shape, dims, gamma.shape, beta.shape)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm needs both running_mean and running_var, or neither")
    if training:
        # the buffers as tensors (their arrays are read in forward), so that a captured
        # step (the jit) knows whose arrays it updates
        running = None if running_mean is None else (running_mean, running_var, momentum)
        return BatchNorm.apply(x, gamma, beta, dims=dims, eps=eps, correction=correction, running=running)
    if running_mean is None:
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    mean = running_mean.reshape(stats_shape)
    var = running_var.reshape(stats_shape)
    return (x - mean) / (var + eps) ** 0.5 * gamma + beta


class LayerNorm(Function):
    def forward(self, x, *affine, dims, eps, has_weight, has_bias):
        """y = xhat * weight + bias,  xhat = (x - mean) / sqrt(var + eps), mean and the
        biased var over the last dims (`dims`) of each position; weight and bias optional."""
        n = math.prod(x.shape[d] for d in dims)
        centered = x - matvec_sum(self.xp, x, dims) / n
        self.inv_std = (sum_of_products(self.xp, centered, centered, dims) / n + eps) ** -0.5
        centered *= self.inv_std  # (in place: centered is our own array, and becomes xhat)
        self.xhat = centered
        self.dims, self.n, self.has_bias = dims, n, has_bias
        self.weight = affine[0] if has_weight else None
        # y is never xhat itself (a new array even without weight and bias): backward reads xhat
        if self.weight is None:
            return self.xhat + affine[-1] if has_bias else self.xhat.copy()
        y = self.xhat * self.weight
        if has_bias:
            y += affine[-1]  # (in place: y is our own new array)
        return y

    def reads_input(self, i):
        return i == 1 and self.weight is not None  # only the weight: x's part of backward is the saved xhat

    def backward(self, g):
        """Batch norm's derivation (see BatchNorm.backward) with c = 0 and the sums over the
        n normalised elements of one position instead of over the batch; the weight sits
        inside those sums, since it varies along them: with dxhat_i = weight_i g_i,

            dx_i = s (dxhat_i - sum_j dxhat_j / n - xhat_i sum_j dxhat_j xhat_j / n)

        and dweight = sum of g xhat, dbias = sum of g over every other dim (the positions)."""
        xhat, dims = self.xhat, self.dims
        dxhat = g if self.weight is None else g * self.weight
        dx = dxhat - matvec_sum(self.xp, dxhat, dims) / self.n
        dx -= xhat * (sum_of_products(self.xp, dxhat, xhat, dims) / self.n)
        dx *= self.inv_std
        positions = tuple(range(g.ndim - len(dims)))
        dweight = [sum_of_products(self.xp, g, xhat, positions, keepdim=False)] if self.weight is not None else []
        dbias = [matvec_sum(self.xp, g, positions, keepdim=False)] if self.has_bias else []
        return (dx, *dweight, *dbias)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise each position over its last len(normalized_shape) dims, then scale by
    weight and shift by bias (both of shape normalized_shape, or None), as torch's."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.shape[input.ndim - len(normalized_shape):] != normalized_shape or not normalized_shape:
        raise RuntimeError(f"layer_norm: normalized_shape {list(normalized_shape)} is not the last dims of "
                           f"an input of shape {input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != normalized_shape:
            raise RuntimeError(f"layer_norm: {name} of shape {t.shape} is not normalized_shape {normalized_shape}")
    _check_same_dtype("layer_norm", input, weight, bias)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    affine = [t for t in (weight, bias) if t is not None]
    return LayerNorm.apply(input, *affine, dims=dims, eps=eps, has_weight=weight is not None,
                           has_bias=bias is not None)


class Dropout(Function):
    saves_inputs = False

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        """out = x * m with m = keep / (1 - p) fixed by the forward's draw:
        d out / d x = m, so the gradient flows only where x was kept, scaled alike."""
        return (g * self.mask,)


def dropout(x, p=0.5, training=True):
    """torch's dropout: in training, each element is zeroed with probability p and
    the rest are scaled by 1 / (1 - p), so the expected output is x; otherwise x.
    The mask comes from the global generator (manual_seed makes it reproducible)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be between 0 and 1, got {p}")
    if not training or p == 0:
        return x
    keep = rand(x.shape, dtype=x.dtype, device=x.device)._data >= p
    scale = 0.0 if p == 1 else 1 / (1 - p)  # p = 1 drops everything, as in torch
    return Dropout.apply(x, mask=keep.astype(x.dtype) * scale)


def relu(x):
    return x.relu()


GELU_TANH_C = math.sqrt(2 / math.pi)  # the tanh form's constants (Hendrycks and Gimpel 2016)
GELU_TANH_A = 0.044715


class GELU(Function):
    def forward(self, x, approximate):
        """y = x Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2; or with
        approximate="tanh", y = x (1 + tanh(u)) / 2, u = sqrt(2/pi) (x + 0.044715 x^3)."""
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = self.xp.tanh(x.dtype.type(GELU_TANH_C) * (x + x.dtype.type(GELU_TANH_A) * (x * x * x)))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(self.xp, x * x.dtype.type(1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, g):
        """Exact: dy/dx = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi) the normal density.
        tanh: with t = tanh(u), dy/dx = (1 + t) / 2 + x (1 - t^2) u'(x) / 2,
        u'(x) = sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
        x, dtype = self.x, self.x.dtype.type
        if self.approximate == "tanh":
            t = self.t
            du = dtype(GELU_TANH_C) * (1 + dtype(3 * GELU_TANH_A) * (x * x))
            return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du),)
        density = self.xp.exp(-0.5 * (x * x)) * dtype(1 / math.sqrt(2 * math.pi))
        return (g * (self.cdf + x * density),)


# erf by W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations
# for the error function", Math. Comp. 23 (1969) 631-638; the coefficients of his CALERF in
# netlib's specfun), near-minimax to about 18 digits, so that float64 rounding is what is left:
# within 4 units in the last place of math.erf over the whole line (tests/ops/test_gpt_ops_torch.py).
# Each pair is (numerator, denominator), coefficients from the highest power down.
ERF_NEAR_0 = ((0.185777706184603153, 3.16112374387056560, 113.864154151050156, 377.485237685302021,
               3209.37758913846947),
              (1.0, 23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062))
ERFC_MIDDLE = ((2.15311535474403846e-8, 0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
                298.635138197400131, 881.952221241769090, 1712.04761263407058, 2051.07837782607147,
                1230.33935479799725),
               (1.0, 15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019,
                3290.79923573345963, 4362.61909014324716, 3439.36767414372164, 1230.33935480374942))
ERFC_TAIL = ((0.0163153871373020978, 0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
              0.0160837851487422766, 6.58749161529837803e-4),
             (1.0, 2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191,
              2.33520497626869185e-3))


def _polynomial(t, coefficients):
    """c_0 t^n + c_1 t^(n-1) + ... + c_n, by Horner's rule (in place on its own array)."""
    total = coefficients[0] * t
    for c in coefficients[1:-1]:
        total += c
        total *= t
    total += coefficients[-1]
    return total


def _rational(t, coefficients):
    numerator, denominator = coefficients
    ratio = _polynomial(t, numerator)
    ratio /= _polynomial(t, denominator)
    return ratio


def _erf(xp, z):
    """erf elementwise, computed in float64, by Cody's three intervals of y = |z|:
        y <= 0.46875:       erf(y)  = y R(y^2)
        0.46875 < y <= 4:   erf(y)  = 1 - e^(-y^2) R(y)
        y > 4:              erf(y)  = 1 - e^(-y^2) (1/sqrt(pi) - R(1/y^2) / y^2) / y
    each R its own rational function, and erf(-y) = -erf(y). (y^2 rounds before e^: that costs
    1 - erf a few ulp of its own, a fraction of one of erf's.) Each interval's elements are
    picked by their positions (flatnonzero): NumPy gathers and scatters by positions several
    times faster than by a boolean mask that mixes at random, as GELU's inputs do."""
    y = xp.abs(z).astype(xp.float64).ravel()
    erf = xp.empty_like(y)
    near_0 = xp.flatnonzero(y <= 0.46875)
    middle = xp.flatnonzero((y > 0.46875) & (y <= 4.0))
    tail = xp.flatnonzero(~(y <= 4.0))  # (nan too, which stays nan)
    t = y[near_0]
    erf[near_0] = t * _rational(t * t, ERF_NEAR_0)
    t = y[middle]
    erf[middle] = 1 - xp.exp(-t * t) * _rational(t, ERFC_MIDDLE)
    t = xp.minimum(y[tail], 27.0)  # past 27 1 - erf is below the smallest float64: erf is 1
    erf[tail] = 1 - xp.exp(-t * t) * (1 / math.sqrt(math.pi) - _rational(1 / (t * t), ERFC_TAIL) / (t * t)) / t
    return (xp.sign(z) * erf.reshape(z.shape)).astype(z.dtype)


def gelu(x, approximate="none"):
    """The Gaussian error linear unit, x Phi(x), exact or (approximate="tanh") as GPT-2 writes it."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


class Linear(Function):
    def forward(self, x, weight, *bias):
        """out = x @ weight^T + bias over x's last dim: one node and one GEMM on x's rows
        (its leading dims flattened), the bias added in place, where the composed ops
        would make three nodes (a transpose, the matmul, a broadcast add)."""
        self.x, self.weight, self.bias_shape = x, weight, bias[0].shape if bias else None
        out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        if bias:
            out += bias[0]
        return out

    def reads_input(self, i):
        return i < 2 and self.needs_grad[1 - i]  # dx reads the weight, dweight reads x; the bias is never read

    def backward(self, g):
        """Over the rows n of x, out_nj = sum_k x_nk W_jk + b_j:
            d out_nj / d x_nk = W_jk  =>  dx_nk = sum_j g_nj W_jk,   dx = g @ W
            d out_nj / d W_jk = x_nk  =>  dW_jk = sum_n g_nj x_nk,   dW = g^T @ x
            d out_nj / d b_j  = 1     =>  db_j  = sum_n g_nj         (summed over the rows)"""
        x, weight = self.x, self.weight
        g2 = g.reshape(-1, g.shape[-1])
        dx = (g2 @ weight).reshape(x.shape) if self.needs_grad[0] else None
        dweight = g2.T @ x.reshape(-1, x.shape[-1]) if self.needs_grad[1] else None
        if self.bias_shape is None:
            return dx, dweight
        if not self.needs_grad[2]:
            return dx, dweight, None
        if self.bias_shape == g.shape[-1:]:  # the usual bias, one per output: summed over every row
            return dx, dweight, matvec_sum(self.xp, g2, (0,), keepdim=False)
        return dx, dweight, unbroadcast(g, self.bias_shape)


def linear(input, weight, bias=None):
    """input @ weight.T + bias, weight (out_features, in_features) as torch's."""
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"linear: input of shape {input.shape} does not fit a weight of shape {weight.shape}: "
                           f"its last dim must be in_features = {weight.shape[1]}")
    out_shape = (*input.shape[:-1], weight.shape[0])
    if bias is not None and not _broadcasts_to(bias.shape, out_shape):
        raise RuntimeError(f"linear: a bias of shape {bias.shape} does not broadcast to the output's {out_shape}")
    _check_same_dtype("linear", input, weight, bias)
    return Linear.apply(input, weight, *([] if bias is None else [bias]))


def _check_same_dtype(op, *tensors):
    """torch refuses an op whose input, weight and bias differ in dtype, rather than promoting one."""
    given = [t for t in tensors if t is not None]
    if len({t.dtype for t in given}) > 1:
        raise RuntimeError(f"{op}: input, weight and bias must have the same dtype, got "
                           f"{', '.join(str(t.dtype) for t in given)}")


def embedding(input, weight):
    """Rows of `weight` picked by the integer ids in `input` (any shape): (*input.shape, dim)."""
    ids = backend.to_array(input._data if isinstance(input, Tensor) else input, device=weight.device)
    if not backend.is_integer(ids.dtype):
        raise TypeError(f"Embedding indices must be integers, not {ids.dtype}")
    rows = weight.shape[0]
    # NumPy would quietly read row -1 as the last row: a lookup must not
    if not backend.in_range(ids, rows):
        raise IndexError(f"Embedding index out of range: values from {int(ids.min())} to "
                         f"{int(ids.max())}, table has {rows} rows")
    return weight[ids]


def one_hot(indices, num_classes=-1):
    """(..., num_classes) int64 tensor with a 1 at each index, as torch's F.one_hot;
    num_classes -1 means one more than the largest index. Outside the graph."""
    ids = backend.to_array(indices._data if isinstance(indices, Tensor) else indices,
                           device=indices.device if isinstance(indices, Tensor) else "cpu")
    if not backend.is_integer(ids.dtype):
        raise TypeError(f"one_hot needs integer class ids, not {ids.dtype}")
    if num_classes == -1:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    if ids.size and not (0 <= int(ids.min()) and int(ids.max()) < num_classes):
        raise IndexError(f"one_hot class ids must lie in [0, {num_classes}), "
                         f"got values from {int(ids.min())} to {int(ids.max())}")
    xp = backend.namespace(backend.device_of(ids))
    return Tensor._wrap((ids[..., None] == xp.arange(num_classes)).astype("int64"),
                           backend.device_of(ids), None)
