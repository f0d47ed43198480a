"""torch's spellings, as the makemore lectures use them, against torch itself.

The lectures run with their imports switched (`import tinygrad_wave as torch`), so
every name and Python protocol they touch must exist here and mean what it means
in torch: the same values, dtypes and gradients (with a random upstream gradient,
through the `check` fixture), and the same refusals.
"""
import math
import threading

import numpy as np
import pytest
import torch

import tinygrad_wave as tw
import tinygrad_wave.nn.functional as F
from tinygrad_wave import Tensor

from conftest import host


def test_the_lectures_names_are_there():
    for name in ["tensor", "randn", "zeros", "ones", "zeros_like", "ones_like", "arange", "linspace", "cat",
                 "stack", "all", "allclose", "no_grad", "manual_seed", "tanh", "log", "sqrt", "exp", "histogram",
                 "float32", "float64", "float", "double", "int64", "long", "int32", "int", "bool"]:
        assert hasattr(tw, name), name
    assert tw.nn.functional is F and F.cross_entropy is tw.functional.cross_entropy
    assert tw.zeros((2, 2), dtype=tw.int32).dtype == tw.int32 == np.int32


def test_no_grad_is_a_decorator_too():
    """Part 3's `@torch.no_grad()` above split_loss."""
    w = Tensor(np.ones(2), requires_grad=True)

    @tw.no_grad()
    def forward():
        return (w * 2).requires_grad
    assert forward() is False and forward() is False and (w * 2).requires_grad


def test_view_refuses_what_would_copy_as_torch_and_reshape_copies():
    """After a transpose a row's elements are no longer side by side: torch's view() refuses, so a
    learner meets the reason for .contiguous() here too."""
    for lib in (tw, torch):
        t = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).transpose(0, 1)
        assert not t.is_contiguous() and t.contiguous().is_contiguous()
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            t.view(6)
        assert t.reshape(6).tolist() == t.contiguous().view(6).tolist() == [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        assert t.view(3, 2).shape == (3, 2) and t.unsqueeze(0).shape == (1, 3, 2)  # no copy needed: views
        # an op's own output is viewed in any shape, as torch's (NumPy may lay it out otherwise)
        x = lib.ones(2, 3, 4)
        assert x.transpose(0, 2).sum(1).view(-1).shape == (8,)
        assert lib.nn.functional.softmax(x.transpose(1, 2), -1).view(-1).shape == (24,)


def test_grad_mode_switches_decorate_and_nest_as_torchs():
    """Bare and called decorators, a generator's body, one object used twice, enable_grad inside
    no_grad, set_grad_enabled as a statement and as a block: each as in torch."""
    def modes(lib):
        w = lib.ones(2, requires_grad=True)
        seen = []

        @lib.no_grad
        def bare():
            return (w * 2).requires_grad

        @lib.inference_mode
        def bare_inference():
            return (w * 2).requires_grad

        @lib.no_grad()
        def generator():
            yield (w * 2).requires_grad
            yield (w * 3).requires_grad
        seen += [bare(), bare_inference(), *generator(), (w * 2).requires_grad]
        switch = lib.no_grad()
        for _ in range(2):
            with switch:
                with lib.enable_grad():
                    seen.append((w * 2).requires_grad)
                seen.append((w * 2).requires_grad)
        lib.set_grad_enabled(False)
        seen.append(lib.is_grad_enabled())
        lib.set_grad_enabled(True)
        with lib.set_grad_enabled(False):
            seen.append(lib.is_grad_enabled())

        @lib.set_grad_enabled(False)
        def decorated():
            return lib.is_grad_enabled()
        seen += [lib.is_grad_enabled(), decorated(), lib.is_grad_enabled()]
        with lib.no_grad():
            decorated()
            seen.append(lib.is_grad_enabled())  # a decorated call gives back the mode of its own call
        return seen
    assert modes(tw) == modes(torch)


def test_a_generator_under_no_grad_runs_every_piece_under_it_as_torch():
    """next(), throw() and close() all resume the body under no_grad: its except and finally too."""
    def pieces(lib):
        seen = []

        @lib.no_grad()
        def generator():
            try:
                yield lib.is_grad_enabled()
                yield lib.is_grad_enabled()
            except ValueError:
                seen.append(("except", lib.is_grad_enabled()))
                yield "caught"
            finally:
                seen.append(("finally", lib.is_grad_enabled()))
        it = generator()
        seen += [next(it), it.throw(ValueError()), lib.is_grad_enabled()]
        it.close()
        return seen + [lib.is_grad_enabled()]
    assert pieces(tw) == pieces(torch)


def test_a_decorated_function_called_from_two_threads_gives_each_its_own_mode_back():
    """Grad mode is per thread; each call of a @no_grad function restores its own thread's mode,
    whatever the other thread's call does in between."""
    inside, leave = threading.Event(), threading.Event()

    @tw.no_grad()
    def held(entered, wait):
        entered.set()
        wait.wait(5)
    modes = {}

    def other_thread():
        tw.set_grad_enabled(False)
        inside.wait(5)
        held(threading.Event(), threading.Event())  # enters and leaves while the first call is inside
        modes["other"] = tw.is_grad_enabled()
        leave.set()
    thread = threading.Thread(target=other_thread)
    thread.start()
    held(inside, leave)
    thread.join()
    modes["first"] = tw.is_grad_enabled()
    assert modes == {"other": False, "first": True}


# --- Python's protocols on one-element tensors --------------------------------------------

def test_numbers_from_tensors_as_torch_gives_them():
    loss, theirs = tw.tensor(2.718281828), torch.tensor(2.718281828)
    assert f"{loss:.4f}" == f"{theirs:.4f}" == "2.7183"
    assert "%.2f" % loss == "%.2f" % theirs and float(loss) == float(theirs)
    assert f"{loss}" == str(loss.item()) == f"{theirs}"
    n = tw.tensor(7)
    assert int(n) == 7 and list(range(n)) == list(range(7)) and [10, 11, 12, 13, 14, 15, 16, 17][n] == 17
    with pytest.raises(TypeError):
        range(tw.tensor(2.0))  # only integer tensors are indices, as in torch
    with pytest.raises(TypeError):
        f"{tw.tensor([1.0, 2.0]):.2f}"  # a format spec needs a single number, as in torch
    with pytest.raises(RuntimeError, match="2 elements"):
        float(tw.tensor([1.0, 2.0]))
    assert repr(tw.tensor([1.0, 2.5])) == repr(torch.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])"
    assert repr(tw.tensor([[1.0, 2.0], [3.0, 4.0]])) == repr(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_iteration_yields_rows_as_torch():
    """Part 5's `for x, y in zip(Xtr[:20], Ytr[:20])` and `itos[ix.item()] for ix in x`."""
    X = tw.tensor([[1, 2], [3, 4], [5, 6]])
    rows = list(X)
    assert len(rows) == 3 and all(isinstance(r, Tensor) for r in rows)
    assert [[ix.item() for ix in row] for row in rows] == [[1, 2], [3, 4], [5, 6]]
    with pytest.raises(TypeError):
        iter(tw.tensor(1.0))


# --- math that the lectures spell torch's way --------------------------------------------

def test_a_number_to_a_tensor_power(check):
    """Part 2's learning-rate search: lrs = 10**lre."""
    check(lambda e: 10 ** e, lambda e: 10 ** e, check.normal(5, 3))
    check(lambda e: 0.5 ** e, lambda e: 0.5 ** e, check.normal(7))


@pytest.mark.parametrize("kwargs", [{}, {"unbiased": True}, {"unbiased": False}], ids=str)
@pytest.mark.parametrize("dim", [None, 0], ids=str)
def test_var_and_std_with_unbiased(check, kwargs, dim):
    """Part 4's hprebn.var(0, keepdim=True, unbiased=True): the older spelling of correction=
    (whose values tests/ops/test_ops_torch.py checks)."""
    keep = {} if dim is None else {"keepdim": True}
    for name in ("var", "std"):
        fn = lambda x: getattr(x, name)(dim, **keep, **kwargs) if dim is not None else getattr(x, name)(**kwargs)
        check(fn, fn, check.normal(5, 4, 3))


def test_std_of_a_constant_has_a_zero_gradient_as_in_torch(check):
    """sqrt(var) at var = 0 is 0 * inf; torch (and so this engine) picks 0, never NaN."""
    constant = np.full((4, 3), 1.5)
    out, _ = check(lambda x: x.std(0), lambda x: x.std(0), constant)
    check(lambda x: x.std(), lambda x: x.std(), constant)
    check(lambda x: x.var(1, keepdim=True), lambda x: x.var(1, keepdim=True), constant)


@pytest.mark.parametrize("dims", [(), (1,), (0, 1), (-2, -1), (1, 1)], ids=str)
def test_flatten_as_torch(check, dims):
    check(lambda x: x.flatten(*dims), lambda x: x.flatten(*dims), check.normal(2, 3, 4))


def test_softmax_and_log_softmax_as_methods(check):
    check(lambda x: x.softmax(-1), lambda x: x.softmax(-1), check.normal(3, 5))
    check(lambda x: x.log_softmax(dim=0), lambda x: x.log_softmax(dim=0), check.normal(3, 5))


def test_copy_casts_broadcasts_and_passes_the_gradient_on_as_torch(check):
    """Under no_grad into a parameter (weight tying, an init); in the graph, src's gradient is the
    upstream gradient of the elements it overwrote."""
    for lib in (tw, torch):
        p = lib.zeros(2, 3, requires_grad=True)
        with lib.no_grad():
            assert p.copy_(lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)) is p
        assert p.dtype == lib.float32 and p.tolist() == [[1.0, 2.0, 3.0]] * 2
    check(lambda x: x.exp().clone().copy_(x * 2), lambda x: x.exp().clone().copy_(x * 2), check.normal(3, 4))


def test_cat_and_stack_route_each_gradient_back(check):
    check(lambda a, b: tw.cat([a, b, a], 1), lambda a, b: torch.cat([a, b, a], 1),
          check.normal(3, 2), check.normal(3, 5))
    check(lambda a, b: tw.stack([a, b], -1), lambda a, b: torch.stack([a, b], -1),
          check.normal(3, 2), check.normal(3, 2))
    with pytest.raises(ValueError, match="same sizes"):
        tw.cat([tw.zeros(2, 3), tw.zeros(3, 2)], 0)


def test_arange_linspace_tensor_as_torch():
    for args in [(5,), (2, 9), (0, 10, 3), (-3, 3)]:
        ours, theirs = tw.arange(*args), torch.arange(*args)
        assert ours.dtype == np.int64 and theirs.dtype == torch.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tw.arange(0, 1, 0.25).dtype == np.float32 == torch.arange(0, 1, 0.25).numpy().dtype
    for args in [(-3, 0, 1000), (0, 1, 7), (5, -2, 33), (1, 1, 1), (2, 5, 1), (2, 5, 0), (2, 5, 2)]:
        ours, theirs = tw.linspace(*args).numpy(), torch.linspace(*args).numpy()
        assert ours.dtype == theirs.dtype == np.float32
        # torch vectorises with the CPU's SIMD width: each chunk of 8 or 16 values starts from the
        # formula and adds the step for the rest, whose rounding can differ from the formula's
        # here by a unit or two in the last place
        np.testing.assert_array_max_ulp(ours, theirs, maxulp=2)
    for start, end, steps in [(-1, 1, 101), (-7.3, 11.1, 12345), (-100, 1, 999)]:
        # across zero a unit in the last place shrinks to nothing, but the difference does not: it is
        # the rounding of sums as large as the ends, three roundings on torch's side and two on ours,
        # so within two units of the larger end's (one measured, on AVX-512; 3,094 units of a value
        # near -5e-4)
        ours, theirs = tw.linspace(start, end, steps).numpy(), torch.linspace(start, end, steps).numpy()
        unit = np.spacing(np.float32(max(abs(start), abs(end))))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2 * unit)
    for lib in (torch, tw):
        with pytest.raises(RuntimeError, match="number of steps must be non-negative"):
            lib.linspace(0, 1, -1)
        with pytest.raises(TypeError):
            lib.linspace(0, 1, 2.0)
    assert tw.tensor([1, 2]).dtype == np.int64 and tw.tensor([1.0, 2]).dtype == np.float32
    assert tw.tensor([[1, 2]], dtype=tw.float64).dtype == np.float64


def test_all_allclose_and_histogram_as_torch(rng):
    a = rng.standard_normal(500).astype(np.float32)
    assert tw.all(tw.tensor(a) == tw.tensor(a)).item() is True
    assert tw.allclose(tw.tensor(a), tw.tensor(a + 1e-9)) is True
    assert tw.allclose(tw.tensor(a), tw.tensor(a + 1e-3)) is False
    hy, hx = tw.histogram(tw.tensor(a), density=True)
    ty, tx = torch.histogram(torch.tensor(a), density=True)
    assert hy.shape == ty.shape == (100,) and hx.shape == tx.shape == (101,)
    np.testing.assert_allclose(hx.numpy(), tx.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hy.numpy(), ty.numpy(), rtol=1e-4, atol=1e-4)


# --- dtypes as torch promotes them ----------------------------------------------------------

DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def pair(library, dtype, value, shape):
    if library is torch:
        return torch.tensor(np.full(shape, value, dtype))
    return tw.tensor(np.full(shape, value, dtype))


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("b", DTYPES + ["python int", "python float", "0-d float64", "0-d int64"])
def test_mixed_dtypes_promote_as_torch(op, a, b):
    if op == "-" and "bool" in (a, b):
        pytest.skip("torch refuses bool subtraction")
    results = []
    for library in (tw, torch):
        x = pair(library, a, 3, (2, 3))
        y = {"python int": 2, "python float": 0.5}.get(b)
        if y is None:
            y = pair(library, b.split()[-1], 2, () if b.startswith("0-d") else (2, 3))
        out = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "/": lambda: x / y}[op]()
        results.append((str(out.dtype).replace("torch.", ""), host(out)))
    (ours, ours_values), (theirs, theirs_values) = results
    assert ours == theirs, f"{a} {op} {b}"
    np.testing.assert_allclose(ours_values, theirs_values)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid"])
def test_float_ops_of_integers_give_float32_as_in_torch(name):
    ours = getattr(tw.tensor([1, 2, 3]), name)()
    theirs = getattr(torch.tensor([1, 2, 3]), name)()
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["mean", "var", "std"])
def test_mean_of_integers_is_refused_as_in_torch(name):
    with pytest.raises(RuntimeError):
        getattr(torch.tensor([1, 2, 3]), name)()
    with pytest.raises(RuntimeError, match="float"):
        getattr(tw.tensor([1, 2, 3]), name)()
    assert tw.tensor([1, 2, 3]).float().mean().item() == pytest.approx(2.0)


def test_grad_and_data_are_tensors_outside_the_graph():
    """Part 3's ((lr * p.grad).std() / p.data.std()).log10().item()."""
    p = Tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    (p * p).sum().backward()
    assert isinstance(p.grad, Tensor) and isinstance(p.data, Tensor)
    assert p.grad.grad_fn is None and not p.grad.requires_grad and not p.data.requires_grad
    assert p.grad is p.grad  # one tensor, as in torch
    ratio = ((0.1 * p.grad).std() / p.data.std()).log10().item()
    assert ratio == pytest.approx(math.log10(0.1 * 2 * p.numpy().std(ddof=1) / p.numpy().std(ddof=1)))
    p.grad = tw.zeros_like(p)
    assert p.grad.numpy().tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="shape"):
        p.grad = tw.zeros(3)
