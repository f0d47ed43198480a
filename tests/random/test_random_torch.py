"""torch's CPU random streams: the same seed gives the same numbers as torch.

rand, randint, multinomial and float32 randn below 16 numbers must agree exactly. randn's
blocks (16 numbers or more) agree to rounding: torch's x86 build computes float32
blocks' log, cos and sin with AVX2 polynomial approximations and float64 ones with its
own libm, NumPy with another. Measured over 3 million numbers: float32 86% identical,
the rest within 3.2e-7 relative and 4.8e-7 absolute (4 float32 epsilons of 1; near zero
the rounding of cos is large relative to the number); float64 99.8% identical, the rest
2 ulp. The tolerance below is that bound in the dtype's epsilon, not a loosened one.
"""
import numpy as np
import pytest
import torch

import tinygrad_wave as tw

SEEDS = [2147483647, 0, 42, 2 ** 40 + 3]
SIZES = [1, 3, 15, 16, 17, 31, 54, 270, (27, 10), (4, 8, 3)]


def generators(seed):
    return tw.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


def assert_normals_match(ours, theirs, exact):
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        eps = float(np.finfo(theirs.dtype).eps)
        np.testing.assert_allclose(ours, theirs, rtol=3 * eps, atol=4 * eps)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rand_is_torchs_exactly(seed, dtype):
    g, tg = generators(seed)
    for size in SIZES:
        ours = tw.rand(size, generator=g, dtype=getattr(tw, dtype)).numpy()
        np.testing.assert_array_equal(ours, torch.rand(size, generator=tg, dtype=getattr(torch, dtype)).numpy())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_randn_is_torchs(seed, dtype):
    """Sizes below 16 (pairs, with the spare kept between calls), 16 and above (blocks),
    odd tails (the last 16 drawn again), and their mixtures in one stream."""
    g, tg = generators(seed)
    for size in SIZES + [5, 1, 2, 33]:
        ours = tw.randn(size, generator=g, dtype=getattr(tw, dtype)).numpy()
        theirs = torch.randn(size, generator=tg, dtype=getattr(torch, dtype)).numpy()
        assert_normals_match(ours, theirs, exact=np.prod(size) < 16 and dtype == "float32")


@pytest.mark.parametrize("seed", SEEDS)
def test_randint_is_torchs_exactly(seed):
    g, tg = generators(seed)
    for args in [(27, (5,)), (0, 182625, (32,)), (-5, 5, (3, 7)), (0, 2 ** 40, (9,)), (3, 4, (2,)),
                 (0, 2 ** 28 - 1, (5,)), (0, 2 ** 28, (5,)), (0, 2 ** 31 - 1, (5,)), (-2 ** 30, 2 ** 30, (5,)),
                 (0, 2 ** 32 - 1, (5,)), (0, 2 ** 32, (5,))]:  # (from 2**28 on, two words a number)
        ours = tw.randint(*args, generator=g)
        theirs = torch.randint(*args, generator=tg)
        assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(tw.randint(10, size=(4,), generator=g).numpy(),
                                  torch.randint(10, size=(4,), generator=tg).numpy())


@pytest.mark.parametrize("seed", SEEDS)
def test_multinomial_is_torchs_exactly(seed):
    """One sample (part 1's sampling loop), many with replacement, many without, 1-D and
    2-D rows, float32 and float64, a zero-probability category that is never drawn."""
    g, tg = generators(seed)
    p32 = torch.rand(27, generator=torch.Generator().manual_seed(seed + 1))
    p32[5] = 0
    for p in [p32, p32.double(), p32.reshape(3, 9)]:
        ours_p = tw.tensor(p.numpy())
        for num_samples, replacement in [(1, True), (1, False), (100, True), (6, False), (8, False)]:
            ours = tw.multinomial(ours_p, num_samples, replacement, generator=g)
            theirs = torch.multinomial(p, num_samples, replacement, generator=tg)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"{num_samples} {replacement}")
            assert 5 not in ours.numpy()[..., :num_samples] if p.ndim == 1 else True


def test_the_global_generator_is_torchs():
    """manual_seed drives every draw without generator=, and a fresh process starts
    from torch's default seed."""
    assert tw.Generator().initial_seed() == torch.Generator().initial_seed()
    np.testing.assert_array_equal(tw.Generator()._uniform(5, np.float32),
                                  torch.rand(5, generator=torch.Generator()).numpy())
    assert tw.manual_seed(42) is tw.default_generator and tw.initial_seed() == 42
    torch.manual_seed(42)
    np.testing.assert_array_equal(tw.randint(0, 1000, (8,)).numpy(), torch.randint(0, 1000, (8,)).numpy())
    np.testing.assert_array_equal(tw.randn(5).numpy(), torch.randn(5).numpy())
    np.testing.assert_array_equal(tw.rand(4, 4).numpy(), torch.rand(4, 4).numpy())


def test_a_saved_state_replays_the_same_numbers():
    """get_state/set_state (torch's) and state_dict/load_state_dict (JSON-ready, for
    checkpoints) both bring back the twister and the spare normal."""
    g = tw.Generator().manual_seed(7)
    tw.randn(3, generator=g)  # leaves a spare normal behind
    state, as_dict = g.get_state(), g.state_dict()
    assert as_dict["spare_normal"] is not None
    first = tw.randn(5, generator=g).numpy(), tw.randint(9, (4,), generator=g).numpy()
    for restore in (lambda h: h.set_state(state), lambda h: h.load_state_dict(as_dict)):
        h = tw.Generator()
        restore(h)
        again = tw.randn(5, generator=h).numpy(), tw.randint(9, (4,), generator=h).numpy()
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])
        assert h.initial_seed() == 7
    assert state.dtype == np.uint8


def test_manual_seed_drops_the_spare_normal_as_torch_does():
    g, tg = generators(3)
    tw.randn(1, generator=g), torch.randn(1, generator=tg)
    g.manual_seed(3), tg.manual_seed(3)
    np.testing.assert_array_equal(tw.randn(2, generator=g).numpy(), torch.randn(2, generator=tg).numpy())


def test_bad_arguments_are_refused_clearly():
    g = tw.Generator()
    with pytest.raises(ValueError, match="low .5. must be below high .5."):
        tw.randint(5, 5, (2,), generator=g)
    with pytest.raises(TypeError, match=r"\(high, size\) or \(low, high, size\)"):
        tw.randint(5, 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        tw.rand(3, dtype=tw.int64)
    with pytest.raises(ValueError, match="sums to 0"):
        tw.multinomial(tw.zeros(4), 1, generator=g)
    with pytest.raises(ValueError, match="inf, nan or a number below 0"):
        tw.multinomial(tw.tensor([0.5, -0.1]), 1)
    with pytest.raises(ValueError, match="without replacement .3 from 2 categories"):
        tw.multinomial(tw.tensor([0.5, 0.5]), 3)
    with pytest.raises(ValueError, match="only CPU generators"):
        tw.Generator(device="cuda")
    with pytest.raises(TypeError, match="tinygrad_wave Generator"):
        tw.rand(3, generator=torch.Generator())
    with pytest.raises(RuntimeError, match="expected a long, but got float"):
        g.manual_seed(1.5)
    with pytest.raises(ValueError, match="not the state"):
        g.load_state_dict({"bit_generator": "PCG64", "state": {}})


# --- randperm: makemore's train/test split ---------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS + [3407])
def test_randperm_is_torchs_exactly(seed):
    """Small and large n (32,033 is makemore's names.txt), in one stream with other draws
    between them, so each permutation must also use exactly torch's number of words."""
    g, tg = generators(seed)
    for n in [0, 1, 2, 3, 10, 257, 32033, 200_003]:
        np.testing.assert_array_equal(tw.randperm(n, generator=g).numpy(), torch.randperm(n, generator=tg).numpy())
        np.testing.assert_array_equal(tw.randint(100, (3,), generator=g).numpy(),
                                      torch.randint(100, (3,), generator=tg).numpy())


@pytest.mark.parametrize("dtype, n", [("int64", 50), ("int32", 50), ("int16", 300), ("int8", 128), ("uint8", 256),
                                      ("float32", 50), ("float64", 50), ("float16", 2049)])
def test_randperm_dtypes_are_torchs(dtype, n):
    g, tg = generators(11)
    ours = tw.randperm(n, generator=g, dtype=getattr(tw, dtype)).numpy()
    theirs = torch.randperm(n, generator=tg, dtype=getattr(torch, dtype)).numpy()
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_randperm_draws_from_the_global_generator_as_torch_does():
    tw.manual_seed(3407), torch.manual_seed(3407)
    np.testing.assert_array_equal(tw.randperm(1000).numpy(), torch.randperm(1000).numpy())
    np.testing.assert_array_equal(tw.rand(4).numpy(), torch.rand(4).numpy())


@pytest.mark.parametrize("n, dtype, error", [(-1, "int64", RuntimeError), (129, "int8", RuntimeError),
                                             (257, "uint8", RuntimeError), (2050, "float16", RuntimeError),
                                             (3, "bool", (TypeError, NotImplementedError)),
                                             (2.0, "int64", TypeError)])
def test_randperm_refuses_what_torch_refuses(n, dtype, error):
    with pytest.raises(error):
        torch.randperm(n, dtype=getattr(torch, dtype))
    with pytest.raises(error, match="randperm"):
        tw.randperm(n, dtype=getattr(tw, dtype))


def test_randperm_past_torchs_small_n_algorithm_is_refused():
    with pytest.raises(ValueError, match="another algorithm"):
        tw.randperm(tw.random.RANDPERM_LIMIT)


@pytest.mark.parametrize("seed", [np.int64(3), 3.0, 3.7, True, "3", -1, 2 ** 64 - 1, -2 ** 63])
def test_the_global_manual_seed_takes_what_int_takes_as_torch(seed):
    tw.manual_seed(seed), torch.manual_seed(seed)
    assert tw.initial_seed() == torch.initial_seed()
    np.testing.assert_array_equal(tw.rand(5).numpy(), torch.rand(5).numpy())


@pytest.mark.parametrize("seed", [2 ** 64, -2 ** 63 - 1, None, np.int64(3), 3.0, True])
def test_a_seed_torch_refuses_is_refused(seed):
    refusals = []
    for lib in (tw, torch):
        with pytest.raises((TypeError, RuntimeError, ValueError)) as refused:
            lib.Generator().manual_seed(seed)
        refusals.append(type(refused.value))
    assert refusals[0] is refusals[1]
    if isinstance(seed, int) and not isinstance(seed, bool):
        for lib in (tw, torch):
            with pytest.raises(ValueError, match="Overflow"):
                lib.manual_seed(seed)


def test_generator_seed_draws_a_fresh_seed_as_torch():
    g = tw.Generator()
    first, second = g.seed(), g.seed()
    assert first != second and g.initial_seed() == second and 0 <= second < 2 ** 64
    h = tw.Generator().manual_seed(second)
    np.testing.assert_array_equal(tw.rand(4, generator=g).numpy(), tw.rand(4, generator=h).numpy())
    assert isinstance(tw.seed(), int) and isinstance(torch.seed(), int)


@pytest.mark.parametrize("field, value", [("position", 700), ("position", 10 ** 9), ("position", -1),
                                          ("words", [1, 2]), ("words", [2 ** 32] * 624), ("seed", "x"),
                                          ("spare_normal", "x"), ("position", 3.0)])
def test_a_generator_state_from_outside_is_checked_field_by_field(field, value):
    """A position past the 624 words read memory beyond the state (or killed the process)."""
    g = tw.Generator().manual_seed(5)
    state = dict(g.state_dict(), **{field: value})
    with pytest.raises(ValueError, match=f"generator state: {field}"):
        g.load_state_dict(state)
    assert g.state_dict()["position"] == 624  # left as it was
    if field == "position" and isinstance(value, int) and value >= 0 and value < 2 ** 32:
        packed = g.get_state().numpy()
        packed[2496:2500] = np.array([value], dtype=np.uint32).view(np.uint8)
        with pytest.raises(ValueError, match="generator state: position"):
            g.set_state(tw.tensor(packed))


@pytest.mark.parametrize("size", [1, 5, 16, 17, 37, 1000], ids=str)
def test_float16_draws_are_torchs_exactly(size):
    g, tg = generators(3)
    for draw in ("rand", "randn"):
        ours = getattr(tw, draw)(size, generator=g, dtype=tw.float16).numpy()
        theirs = getattr(torch, draw)(size, generator=tg, dtype=torch.float16).numpy()
        assert ours.dtype == np.float16
        if draw == "randn" and size >= 16:  # float32's numbers rounded: float32's 2 ulp can cross a rounding edge
            np.testing.assert_array_max_ulp(ours, theirs, maxulp=1)
        else:
            np.testing.assert_array_equal(ours, theirs, draw)
    np.testing.assert_array_equal(tw.rand(3, generator=g).numpy(), torch.rand(3, generator=tg).numpy())


def test_sizes_as_torch_takes_them():
    for call in ["rand(size=(2, 3))", "randn(size=(4,))", "randint(low=2, high=9, size=(3,))",
                 "randint(high=5, size=(3,))", "randint(2, high=9, size=(3,))", "randint(0, 9, size=(2, 2))"]:
        g, tg = generators(4)
        ours = eval(f"tw.{call[:-1]}, generator=g)")
        theirs = eval(f"torch.{call[:-1]}, generator=tg)")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), call)
    g, tg = generators(4)
    np.testing.assert_array_equal(tw.randn(tw.tensor(3), generator=g).numpy(),
                                  torch.randn(torch.tensor(3), generator=tg).numpy())
    for lib in (tw, torch):
        with pytest.raises(RuntimeError, match="(?i)trying to create tensor with negative dimension -1"):
            lib.randn(-1)
        with pytest.raises(TypeError):
            lib.rand(2.0)
