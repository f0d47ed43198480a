"""The ops "Let's build GPT" adds, against PyTorch: masked_fill, where, tril/triu, layer norm,
softmax and log_softmax over any dim, relu and gelu.

As in test_ops_torch.py, `check` runs each test per device (the CPU, the CUDA stand-in, a
GPU where there is one) and per dtype (float64, float32), pushes one random upstream
gradient back through both libraries, and compares outputs and every input's gradient.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_wave as tw
import tinygrad_wave.functional as F
from tinygrad_wave import Tensor

from conftest import host


def causal_mask(T):
    """gpt.py's mask: True above the diagonal (the future), where the scores become -inf."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)


# --- masked_fill -------------------------------------------------------------------------------

MASKS = {
    "causal (B, T, T)": ((2, 4, 4), causal_mask(4)),
    "one row masked": ((3, 5), np.array([[False] * 5, [True] * 5, [False, True, False, True, False]])),
    "mask broadcast along rows": ((3, 5), np.array([True, False, False, True, False])),
    "nothing masked": ((2, 3), np.zeros((2, 3), dtype=bool)),
    "everything masked": ((2, 3), np.ones((1, 3), dtype=bool)),
}


@pytest.mark.parametrize("shape, mask", MASKS.values(), ids=MASKS.keys())
@pytest.mark.parametrize("value", [float("-inf"), 0.0, 2.5], ids=["-inf", "0", "2.5"])
def test_masked_fill(check, shape, mask, value):
    """d out/dx is 0 where the forward wrote `value` (also -inf: no nan), 1 elsewhere."""
    ours_mask = Tensor(mask, device=check.device)
    check(lambda x: x.masked_fill(ours_mask, value), lambda x: x.masked_fill(torch.tensor(mask), value),
          check.normal(*shape))


def test_masked_fill_then_softmax_is_attention(check):
    """The causal scores of gpt.py's head: softmax over the last dim after -inf above the diagonal."""
    mask = causal_mask(5)
    ours_mask = Tensor(mask, device=check.device)
    out, _ = check(lambda s: F.softmax(s.masked_fill(ours_mask, float("-inf")), dim=-1),
                   lambda s: torch.softmax(s.masked_fill(torch.tensor(mask), float("-inf")), dim=-1),
                   check.normal(2, 5, 5))
    assert np.all(out.numpy()[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0)


def test_masked_fill_refuses_what_torch_refuses(device):
    x = Tensor(np.ones((2, 3)), device=device)
    with pytest.raises(RuntimeError, match="boolean masks"):
        x.masked_fill(Tensor(np.ones((2, 3)), device=device), 0.0)
    with pytest.raises(RuntimeError, match="does not broadcast"):
        x.masked_fill(Tensor(np.ones((3, 3), dtype=bool), device=device), 0.0)
    with pytest.raises(RuntimeError, match="0-d tensor"):
        x.masked_fill(Tensor(np.ones((2, 3), dtype=bool), device=device), Tensor(np.ones(2), device=device))


# --- where, tril, triu ------------------------------------------------------------------------------

WHERE_SHAPES = [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (3, 4)), ((4,), (3, 4), ()), ((2, 3, 1), (3, 4), (4,))]


@pytest.mark.parametrize("cond_shape, a_shape, b_shape", WHERE_SHAPES, ids=str)
def test_where(check, cond_shape, a_shape, b_shape):
    """Each input's gradient is g where it was chosen, summed over the copies broadcasting made."""
    condition = check.rng.random(cond_shape) > 0.5
    ours_condition = Tensor(condition, device=check.device)
    check(lambda a, b: tw.where(ours_condition, a, b), lambda a, b: torch.where(torch.tensor(condition), a, b),
          check.normal(*a_shape), check.normal(*b_shape))


def test_where_with_a_number(check):
    condition = check.rng.random((3, 4)) > 0.5
    ours_condition = Tensor(condition, device=check.device)
    check(lambda a: tw.where(ours_condition, a, 0.0), lambda a: torch.where(torch.tensor(condition), a, 0.0),
          check.normal(3, 4))
    check(lambda b: tw.where(ours_condition, -1.5, b), lambda b: torch.where(torch.tensor(condition), -1.5, b),
          check.normal(3, 4))


@pytest.mark.parametrize("a, b", [(1, 0), (1.0, 0), (1, 0.5), (True, False), (True, 2)], ids=str)
def test_where_between_two_numbers_has_torchs_dtype(a, b):
    """torch.where(c, 1, 0) is an int64 mask, not floats: the numbers' own kinds decide."""
    condition = np.array([True, False, True])
    ours, theirs = tw.where(tw.tensor(condition), a, b), torch.where(torch.tensor(condition), a, b)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(host(ours), theirs.numpy())


@pytest.mark.parametrize("dtypes", [("int64", "float32"), ("bool", "int64"), ("int32", "int64"), ("float32", "float64"),
                                    ("uint8", "int8")], ids=str)
def test_cat_of_mixed_dtypes_has_torchs_dtype(dtypes):
    """An int64 and a float32 tensor concatenate to float32 in torch (NumPy's rule gives float64);
    the gradient goes back to the float input in its own dtype."""
    arrays = [np.arange(1, 4).astype(dtype) for dtype in dtypes]
    ours = tw.cat([tw.tensor(a) for a in arrays])
    theirs = torch.cat([torch.tensor(a) for a in arrays])
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(host(ours), theirs.numpy())
    x = tw.tensor(np.ones(2, dtype="float32"), requires_grad=True)
    tw.cat([tw.tensor(np.arange(3)), x]).backward(tw.tensor(np.arange(5.0, dtype="float32")))
    assert x.grad.dtype == np.float32 and host(x.grad).tolist() == [3.0, 4.0]


@pytest.mark.parametrize("which", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4), (1, 1)], ids=str)
@pytest.mark.parametrize("diagonal", [0, 1, -1, 3])
def test_triangles(check, which, shape, diagonal):
    check(lambda x: getattr(x, which)(diagonal), lambda x: getattr(torch, which)(x, diagonal),
          check.normal(*shape))


def test_tril_of_ones_is_gpts_mask():
    """torch.tril(torch.ones(T, T)): the module-level function, as gpt.py calls it."""
    ours, theirs = tw.tril(tw.ones(6, 6)), torch.tril(torch.ones(6, 6))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(tw.triu(tw.ones(3, 4), 1).numpy(), torch.triu(torch.ones(3, 4), 1).numpy())
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        tw.tril(tw.ones(3))


# --- layer norm ---------------------------------------------------------------------------------------

# (a single normalised element is left out: its xhat is 0 here and rounding noise in torch)
LAYER_NORM_SHAPES = [((4, 5), (5,)), ((2, 3, 6), (6,)), ((2, 3, 4), (3, 4)), ((3, 2), (2,)), ((1, 2, 7), (7,))]


@pytest.mark.parametrize("x_shape, normalized_shape", LAYER_NORM_SHAPES, ids=str)
@pytest.mark.parametrize("affine", ["weight and bias", "weight only", "neither"])
def test_layer_norm(check, x_shape, normalized_shape, affine):
    arrays = [check.normal(*x_shape)]
    if affine != "neither":
        arrays.append(check.normal(*normalized_shape))
    if affine == "weight and bias":
        arrays.append(check.normal(*normalized_shape))

    def layer_norm(functional):
        return lambda x, *wb: functional.layer_norm(x, normalized_shape, *wb, eps=1e-5)
    check(layer_norm(F), layer_norm(TF), *arrays)


def test_layer_norm_backward_needs_the_weight_unchanged_and_nothing_else(device):
    """Backward reads the weight's values (dx = s (w g - ...)) and its own saved xhat: a weight
    changed in place after forward is refused, as torch refuses it; a changed bias or input is not."""
    def forward():
        x, w, b = (Tensor(np.random.default_rng(0).standard_normal(s), requires_grad=True, device=device)
                   for s in ((2, 3), (3,), (3,)))
        return x, w, b, F.layer_norm(x, (3,), w, b)
    x, w, b, y = forward()
    with tw.no_grad():
        b += 1
        x *= 2
    y.sum().backward()
    x, w, b, y = forward()
    with tw.no_grad():
        w *= 2
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_layer_norm_without_affine_output_changed_in_place_keeps_its_gradient(check):
    """With neither weight nor bias the output is xhat itself, which backward reads: it must be
    its own array, or y += 5 would change the saved xhat and the gradient with it."""
    def changed_in_place(functional):
        def f(x):
            y = functional.layer_norm(x, (4,))
            y += 5
            return y * y
        return f
    check(changed_in_place(F), changed_in_place(TF), check.normal(3, 4))


def test_layer_norm_refuses_a_shape_that_is_not_the_last_dims():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (2,))
    with pytest.raises(RuntimeError, match="weight of shape"):
        F.layer_norm(x, (3,), Tensor(np.ones(2)))


# --- softmax and log_softmax over any dim, relu, gelu ----------------------------------------------------

SOFTMAX_CASES = [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((5,), 0), ((3, 1), 1)]


@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax(check, shape, dim, which):
    check(lambda x: getattr(F, which)(x, dim=dim), lambda x: getattr(TF, which)(x, dim=dim),
          check.normal(*shape) * 3)


def test_softmax_of_a_transposed_tensor(check):
    """Its rows are not contiguous in memory (the row max is read at the argmax, in place)."""
    check(lambda x: F.softmax(x.transpose(0, 1), dim=-1), lambda x: TF.softmax(x.transpose(0, 1), dim=-1),
          check.normal(6, 4) * 3)


@pytest.mark.parametrize("offset", [0.0, -6.0, -30.0, 200.0], ids=["rows alike", "a row 6 below",
                                                                     "a row 30 below", "a row 200 above"])
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_of_rows_far_apart(check, offset, dim):
    """Softmax shifts by the array's max while every row's max lies within SHIFT_SPREAD (8) of
    it, else by each row's own max: torch's values and gradients either way."""
    x = check.normal(4, 6)
    x[1] += offset
    x[:, 2] += offset / 2
    check(lambda x: F.softmax(x, dim), lambda x: TF.softmax(x, dim), x)


@pytest.mark.parametrize("offset", [0.0, -7.0, -20.0, -30.0])
def test_softmax_keeps_tiny_probabilities(offset):
    """A probability that torch gives as a normal float32 is never 0 here, and one above 1e-34
    is torch's to float32 rounding, also with a row further below the array's max than the
    spread, where a shift by the array's max would have put the row's small outputs into the
    subnormals or to 0 (20 below: a spread of 25 would fail here).
    Rows of [0, -85]: the second output e^-85 ~ 1.2e-37 is a normal float32."""
    x = np.array([[0.0, -1.0], [0.0, -85.0], [0.0, -40.0]], dtype=np.float32)
    x[1:] += offset
    ours, theirs = F.softmax(tw.tensor(x), -1).numpy(), TF.softmax(torch.from_numpy(x), -1).numpy()
    assert np.all(ours[theirs >= np.finfo(np.float32).tiny] > 0)
    above = theirs > 1e-34
    np.testing.assert_allclose(ours[above], theirs[above], rtol=1e-6)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=0)


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_layer_norm_refuses_parameters_of_another_dtype(which):
    """As torch does ("mixed dtype"), rather than promoting the output to the wider dtype."""
    x = tw.randn(3, 4)
    params = {"weight": tw.ones(4), "bias": tw.zeros(4)}
    params[which] = params[which].to(tw.float64)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.layer_norm(x, (4,), params["weight"], params["bias"])
    with pytest.raises(RuntimeError, match="dtype|scalar type"):  # torch's own refusal
        TF.layer_norm(torch.from_numpy(x.numpy()), (4,), *(torch.from_numpy(p.numpy()) for p in params.values()))


def test_softmax_of_nan_and_inf_rows_is_torchs():
    """nan in a row, +inf in a row, a row all -inf: torch's nan rows, and the other rows exact."""
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    x[1, 2], x[2, 0], x[3] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        ours = F.softmax(tw.tensor(x), -1).numpy()
    theirs = TF.softmax(torch.from_numpy(x), -1).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)  # (nan where torch's is nan)


@pytest.mark.parametrize("shape, dim", [((3, 5, 5), 2), ((4, 3), 0), ((2, 3, 4), 1), ((3, 1), 1)], ids=str)
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_max_kept_is_numpys_max(shape, dim, dtype):
    """max_kept, the row max inside softmax and cross-entropy, is NumPy's max with the dim kept,
    -inf and nan included (a row with a nan has the max nan), to the bit."""
    from tinygrad_wave.ops import max_kept
    x = np.random.default_rng(0).standard_normal(shape) * 10
    if dtype != "int64":
        x.flat[0], x.flat[-1] = -np.inf, np.nan
    x = x.astype(dtype)
    expected = x.max(axis=dim, keepdims=True)
    assert max_kept(np, x, dim).tobytes() == expected.tobytes()


@pytest.mark.parametrize("shape, dims", [((3, 5), (1,)), ((3, 5), (0,)), ((2, 3, 4), (1, 2)), ((2, 3, 4), (0, 1)),
                                         ((4, 1, 3), (1,))], ids=str)
@pytest.mark.parametrize("keepdim", [True, False])
def test_sum_of_products_is_the_sum_of_the_product(shape, dims, keepdim):
    """sum_of_products, layer norm's sums of products in one einsum pass, is (a * b).sum(dims),
    with the dims kept or dropped, for a b that is a broadcast view too (a gradient of a sum)."""
    from tinygrad_wave.ops import sum_of_products
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    for b in (rng.standard_normal(shape), np.broadcast_to(rng.standard_normal(shape[-1]), shape)):
        expected = (a * b).sum(axis=dims, keepdims=keepdim)
        out = sum_of_products(np, a, b, dims, keepdim=keepdim)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, dims", [((3, 5), (1,)), ((3, 5), (0,)), ((2, 3, 4), (1, 2)), ((2, 3, 4), (0, 1)),
                                         ((2, 3, 4), (1,)), ((2, 3, 4), (0, 1, 2)), ((7,), (0,)), ((2, 0, 3), (2,)),
                                         ((3, 4), ())], ids=str)
@pytest.mark.parametrize("keepdim", [True, False])
def test_matvec_sum_is_numpys_sum(shape, dims, keepdim):
    """matvec_sum, the row sums of softmax and layer norm and a bias's gradient as BLAS products
    with ones, is NumPy's sum over the same dims (last, first, all, a middle one, none, an empty
    array), with the dims kept or dropped; for a transposed view too, and with inf and nan
    where NumPy's sum has them."""
    from tinygrad_wave.ops import matvec_sum
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    for x in (a, a.T.copy().T, a.astype(np.float32)):
        expected = x.sum(axis=dims, keepdims=keepdim)
        out = matvec_sum(np, x, dims, keepdim=keepdim)
        assert out.shape == expected.shape and out.dtype == expected.dtype
        tolerance = 1e-6 if x.dtype == np.float32 else 1e-12  # (float32: sums of up to 24 numbers near 1)
        np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)
    for x in ((a * 100).astype(np.int8), a > 0):  # not floats: NumPy's sum, widened to int64 (no wrap-around)
        expected = x.sum(axis=dims, keepdims=keepdim)
        out = matvec_sum(np, x, dims, keepdim=keepdim)
        assert out.dtype == expected.dtype and np.array_equal(out, expected)
    if a.size > 2:
        a.flat[0], a.flat[1], a.flat[-1] = np.inf, -np.inf, np.nan
        with np.errstate(invalid="ignore"):  # (inf - inf: both sums warn)
            out, expected = matvec_sum(np, a, dims, keepdim), a.sum(dims, keepdims=keepdim)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)  # (nan and inf where NumPy's are)


def test_log_softmax_of_large_values_stays_finite(check):
    out, _ = check(lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1), check.normal(3, 5) * 300)
    assert np.all(np.isfinite(out.numpy()))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(3, 7), (2, 1, 5), ()], ids=str)
def test_gelu(check, approximate, shape):
    check(lambda x: F.gelu(x, approximate=approximate), lambda x: TF.gelu(x, approximate=approximate),
          check.normal(*shape) * 2)


def test_gelu_over_a_wide_range(check):
    """Both tails, and the edges of erf's three intervals (|x| / sqrt 2 = 0.46875 and 4)."""
    edges = np.array([0.46875, 4.0]) * np.sqrt(2)
    x = np.concatenate([np.linspace(-12, 12, 97), edges, -edges, np.nextafter(edges, 0)])
    check(lambda x: F.gelu(x), lambda x: TF.gelu(x), x)


def erf_test_points(dtype):
    """The whole line densely, tiny values, each interval's edges, the tails, inf and nan."""
    edges = np.array([0.46875, 4.0, 26.5, 27.0])
    points = np.concatenate([np.linspace(-30, 30, 120001), np.logspace(-30, 1.5, 4001), edges,
                             np.nextafter(edges, 0), np.nextafter(edges, 30), [0.0, np.inf, np.nan]])
    points = np.concatenate([points, -points]).astype(dtype)
    return points, np.array([math.erf(p) for p in points.tolist()]).astype(dtype)


def test_erf_is_math_erf_to_float64_rounding():
    """Cody's rational approximations are good to about 18 digits; what is left is float64
    rounding, at most 4 ulp here, just past 0.46875, where erf = 1 - erfc with erfc near 1/2
    (an ulp of erfc is 2 of erf). The bound is 6: NumPy's exp may round differently by an
    ulp on another CPU."""
    points, expected = erf_test_points(np.float64)
    got = F._erf(np, points)
    assert got.dtype == np.float64
    finite = ~np.isnan(expected)
    ulps = np.abs(got[finite] - expected[finite]) / np.spacing(np.abs(expected[finite]))
    assert ulps.max() <= 6, f"{ulps.max()} ulp at x = {points[finite][ulps.argmax()]}"
    assert np.mean(ulps) < 0.1  # almost everywhere within rounding
    assert np.isnan(got[~finite]).all()


def test_erf_in_float32_is_math_erf_rounded():
    """Computed in float64, then rounded to float32 once: math.erf's value rounded alike (a
    float64 error of a few ulp could tip a value lying almost halfway: 1 ulp allowed)."""
    points, expected = erf_test_points(np.float32)
    got = F._erf(np, points)
    assert got.dtype == np.float32
    np.testing.assert_array_max_ulp(got, expected, maxulp=1)
    assert np.mean(got == expected) > 0.999


def test_relu(check):
    check(F.relu, TF.relu, check.normal(4, 5))


def test_gelu_refuses_an_unknown_approximation():
    with pytest.raises(RuntimeError, match="none or tanh"):
        F.gelu(Tensor(np.ones(3)), approximate="erf")
