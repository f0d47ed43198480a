"""Ops at empty shapes and special points (one element, 0, nan), against torch: where torch
has an answer, the same answer and the same gradient; never a NumPy traceback."""
import math

import numpy as np
import pytest
import torch

import tinygrad_wave as tw

NAN = math.nan


def same(fn):
    return fn, fn


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("shape, dim", [((1,), None), ((3, 1), 1), ((1, 4), 0)], ids=str)
def test_var_and_std_over_one_element_are_nan_with_nan_gradients(check, op, shape, dim):
    """n - 1 = 0: part 4's hand-written batch norm at batch 1 divides by it."""
    check(*same(lambda x: getattr(x, op)(dim)), check.normal(*shape))


@pytest.mark.parametrize("a_shape, b_shape", [((2, 0), (0, 3)), ((0, 2), (2, 3)), ((2, 3), (3, 0)),
                                              ((4, 2, 0), (0, 3)), ((2, 2, 0), (2, 0, 3))], ids=str)
def test_matmul_over_an_empty_dim_is_zeros(check, a_shape, b_shape):
    check(*same(lambda a, b: a @ b), check.normal(*a_shape), check.normal(*b_shape))


def test_a_zero_base_to_a_tensor_power_has_torchs_gradient(check):
    """d(0^a)/da: 0 where a >= 0 (0^a is flat there, torch takes 0), -inf where a < 0."""
    a = np.array([2.0, 0.0, -1.0, 0.5, 3.0])
    check(*same(lambda a: 0.0 ** a), a)
    check(*same(lambda a: 0 ** a), a)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_max_over_a_nan_gives_its_gradient_to_the_nans(check, reduce):
    x = np.array([[1.0, NAN, 3.0], [4.0, 5.0, NAN]])
    check(*same(lambda x: getattr(x, reduce)()), x)
    check(*same(lambda x: getattr(x, reduce)(1).values), x)
    check(*same(lambda x: getattr(x, reduce)(1).values), np.array([[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]]))


@pytest.mark.parametrize("op", ["abs", "relu"])
def test_abs_and_relu_at_nan_and_zero_as_torch(check, op):
    check(*same(lambda x: getattr(x, op)()), np.array([1.0, NAN, -3.0, 0.0, NAN]))


@pytest.mark.parametrize("replacement", [False, True])
def test_multinomial_of_no_rows_is_empty(replacement):
    ours = tw.multinomial(tw.zeros(0, 4), 2, replacement)
    theirs = torch.multinomial(torch.zeros(0, 4), 2, replacement)
    assert ours.shape == tuple(theirs.shape) == (0, 2) and ours.dtype == np.int64


def test_multinomial_without_replacement_draws_zero_probability_categories_last():
    """torch draws them once the others are drawn, in the order of its top-k (not reproduced)."""
    probs = [[0.5, 0.0, 0.3, 0.0, 0.2], [0.0, 0.0, 1.0, 0.0, 0.0]]
    for seed in range(5):
        ours = tw.multinomial(tw.tensor(probs), 5, generator=tw.Generator().manual_seed(seed)).numpy()
        theirs = torch.multinomial(torch.tensor(probs), 5, generator=torch.Generator().manual_seed(seed)).numpy()
        for row, p, a, b in zip(range(2), probs, ours, theirs):
            drawn = sum(v > 0 for v in p)
            np.testing.assert_array_equal(a[:drawn], b[:drawn], f"seed {seed}, row {row}")
            assert sorted(a[drawn:]) == sorted(b[drawn:]) == [k for k, v in enumerate(p) if v == 0]
    for lib in (tw, torch):
        with pytest.raises((RuntimeError, ValueError), match="n_sample > prob_dist.size"):
            lib.multinomial(lib.tensor([0.5, 0.5]), 3)


def test_max_along_a_full_dim_of_a_tensor_with_no_rows_is_empty(check):
    check(*same(lambda x: x.max(1).values), check.normal(0, 3))
    check(*same(lambda x: x.min(-1).values), check.normal(2, 0, 3))
    for lib in (tw, torch):
        with pytest.raises((RuntimeError, IndexError), match="max"):
            lib.zeros(3, 0).max(1)


def test_softmax_along_an_empty_dim_is_empty(check):
    check(lambda x: tw.functional.softmax(x, 1), lambda x: torch.softmax(x, 1), check.normal(2, 0))


@pytest.mark.parametrize("args, refusal", [((0, 10, 0), "step must be nonzero"),
                                           ((5, 0), "inconsistent with step sign"),
                                           ((0, 5, -1), "inconsistent with step sign")])
def test_arange_refuses_what_torch_refuses(args, refusal):
    for lib in (tw, torch):
        with pytest.raises(RuntimeError, match=refusal):
            lib.arange(*args)
    assert tw.arange(0, 0).shape == tuple(torch.arange(0, 0).shape) == (0,)


@pytest.mark.parametrize("exponent", [-2, -1, 0, 1, 2, 3, 3.0, 4, -3.0, 0.5])
def test_whole_powers_have_torchs_bits(exponent):
    """torch computes x ** p for p in -2..3 as products; the others with pow(), as NumPy does."""
    x = np.random.default_rng(0).uniform(0.5, 30, 1000)
    for dtype in (np.float64, np.float32):
        ours, theirs = tw.tensor(x.astype(dtype)) ** exponent, torch.tensor(x.astype(dtype)) ** exponent
        np.testing.assert_array_max_ulp(ours.numpy(), theirs.numpy(), maxulp=0 if exponent in range(-2, 4) else 1)


@pytest.mark.parametrize("exponent", [1, 1.0, 2, 3.0, -1])
def test_a_power_is_new_memory_that_an_in_place_change_keeps_from_its_base(exponent):
    """x ** 1 once returned x's own array: y += 1 then changed x too, where torch's x is untouched."""
    for lib in (tw, torch):
        x = lib.tensor([1.0, 2.0, 4.0])
        y = x.pow(exponent)
        y += 1
        np.testing.assert_array_equal(np.asarray(x.tolist()), [1.0, 2.0, 4.0], err_msg=lib.__name__)
        np.testing.assert_array_equal(np.asarray(y.tolist()), np.array([1.0, 2.0, 4.0]) ** exponent + 1)


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (None, 0.5), (0, None), (1.0, -1.0)], ids=str)
def test_clamp_at_its_bounds_and_at_nan_as_torch(check, low, high):
    """A value on a bound came through (gradient 1), nan stays nan with gradient 0, and a
    min above max gives max everywhere (gradient 0)."""
    check(*same(lambda x: x.clamp(low, high)), np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, NAN]))


def test_clamp_refuses_what_it_cannot_do_in_one_line():
    for lib in (tw, torch):
        with pytest.raises(RuntimeError, match="(?i)at least one of 'min' or 'max' must not be None"):
            lib.ones(2).clamp()
    with pytest.raises(TypeError, match="torch.where"):
        tw.ones(2).clamp(tw.zeros(2))
