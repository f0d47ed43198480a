"""The engine never gives a silently wrong gradient, under misuse and faults.

- version counters: data changed in place after forward (an optimiser step
  between forward and backward) makes backward raise, naming the op; index and
  target arrays are captured by value, so changing them is harmless;
- a gradient's shape is checked where it reaches a tensor (an op's backward,
  gradcheck, `x.grad = ...`);
- empty batches, Module.to all or nothing, grad mode per thread, and the small
  conversions (to(dtype=int), bool(t), np.asarray(t), Tensor(None)).
"""
import threading
import warnings

import numpy as np
import pytest
import torch

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, backend, is_grad_enabled, no_grad, optim
from tinygrad_wave.autograd import Function
from tinygrad_wave.gradcheck import GradcheckError, gradcheck

from conftest import host

MODIFIED = "modified by an in-place operation"


def param(array, device="cpu"):
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True, device=device)


# --- version counters: a saved tensor changed before backward --------------------------------------------

def test_an_optimiser_step_between_forward_and_backward_raises(device, rng):
    """The classic slip: opt.step() after the forward of the next batch. MatMul saved W for
    the gradient of its input x (x requires grad, as a hidden layer's input does)."""
    layer = nn.Linear(3, 2).to(device=device, dtype="float64")
    opt = optim.SGD(layer.parameters(), lr=0.1)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    layer(x).sum().backward()
    loss = (layer(x) ** 2).sum()
    opt.step()  # changes weight (and bias) in place
    with pytest.raises(RuntimeError, match=MODIFIED) as excinfo:
        loss.backward()
    message = str(excinfo.value)
    assert "MatMul" in message and "(3, 2)" in message and ".clone()" in message


@pytest.mark.parametrize("change", ["no_grad +=", "item assignment", ".data -=", "load_state_dict", "Module.to"])
def test_every_kind_of_in_place_change_bumps_the_version(device, change):
    bn = nn.BatchNorm1d(3).to(device=device, dtype="float64")
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True, device=device)
    out = bn(x)  # BatchNorm saves gamma
    gamma = bn.gamma
    version = gamma._version[0]
    if change == "no_grad +=":
        with no_grad():
            gamma += 1
    elif change == "item assignment":
        with no_grad():
            gamma[0] = 2.0
    elif change == ".data -=":
        gamma.data -= 0.1
    elif change == "load_state_dict":
        bn.load_state_dict(bn.state_dict())
    else:
        bn.to(dtype="float64")  # (a no-op cast still rewrites the arrays)
    assert gamma._version[0] > version
    with pytest.raises(RuntimeError, match=MODIFIED) as excinfo:
        out.backward(np.ones(out.shape))
    assert "BatchNorm" in str(excinfo.value)


def test_an_op_that_saved_nothing_of_its_input_does_not_mind(device):
    """Add never reads its inputs' values in backward: changing one afterwards is harmless
    (torch agrees), and the gradient is still right."""
    w = param([1.0, 2.0], device)
    y = w + 1
    with no_grad():
        w *= 5
    y.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(host(w.grad), [3, 4])


@pytest.mark.parametrize("view", ["W.T", "W.view(-1)", "W[0:2]"])
def test_a_parameter_changed_while_a_view_of_it_was_saved_raises(device, view):
    """A view shares its base's memory, so it shares its version: W.T used in a matmul,
    then W stepped in place, must raise like W itself (as in torch)."""
    W = param(np.arange(1.0, 7.0).reshape(3, 2), device)
    v = {"W.T": lambda: W.T, "W.view(-1)": lambda: W.view(-1), "W[0:2]": lambda: W[0:2]}[view]()
    loss = (v * v).sum()
    with no_grad():
        W -= 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        loss.backward()


def test_a_copy_made_by_an_op_does_not_share_the_version(device, rng):
    """A gather by integer ids (Embedding) or a reshape that had to copy is new memory:
    stepping W afterwards changes neither, so backward runs and is right."""
    W0 = rng.standard_normal((4, 3))
    W = param(W0, device)
    gathered = W[Tensor([0, 2, 2], device=device)]
    copied = W.T.reshape(12)  # a transposed array cannot be viewed flat: reshape copies
    loss = (gathered * gathered).sum() + (copied * copied).sum()
    with no_grad():
        W -= 1
    loss.backward()
    expected = 2 * W0 * np.array([[1], [0], [2], [0]]) + 2 * W0
    np.testing.assert_allclose(host(W.grad), expected, rtol=1e-14)


SAVE_THEIR_OUTPUT = {"Tanh": lambda x: x.tanh(), "Exp": lambda x: x.exp(), "Sqrt": lambda x: x.sqrt(),
                     "Sigmoid": lambda x: x.sigmoid(), "Softmax": lambda x: F.softmax(x, 0)}


@pytest.mark.parametrize("name", SAVE_THEIR_OUTPUT.keys())
def test_a_saved_output_changed_through_detach_raises(device, name):
    """tanh's backward reads its output; detach() shares the memory (and the version), so
    changing the detached tensor must not silently change tanh's gradient."""
    x = param([0.5, 1.0], device)
    h = SAVE_THEIR_OUTPUT[name](x)
    d = h.detach()
    d *= 0
    with pytest.raises(RuntimeError, match=MODIFIED) as excinfo:
        h.backward(np.ones(2))
    assert name in str(excinfo.value) and "its output" in str(excinfo.value)


# --- index and target arrays are captured by value ---------------------------------------------------

def index_case(kind, W, device):
    """W read through an index of this kind, and a function that changes the index in place."""
    ids = lambda values: Tensor(values, device=device)._data  # an integer array of W's device
    if kind == "array":
        rows = ids([0, 2, 2])
        return W[rows], lambda: rows.fill(3)
    if kind == "tuple of arrays":
        rows, cols = ids([0, 2, 2]), ids([1, 1, 0])
        return W[rows, cols], lambda: (rows.fill(3), cols.fill(2))
    if kind == "list":
        rows = [0, 2, 2]
        return W[rows], lambda: rows.__setitem__(0, 3)
    if kind == "tuple of lists":
        rows, cols = [0, 2, 2], [1, 1, 0]
        return W[rows, cols], lambda: (rows.__setitem__(0, 3), cols.append(2))
    if kind == "range and list":
        cols = [1, 1, 0]
        return W[range(3), cols], lambda: cols.__setitem__(2, 2)
    if kind == "Tensor":
        rows = Tensor([0, 2, 2], device=device)
        return W[rows], lambda: rows.__iadd__(1)  # an integer Tensor needs no grad: in place is allowed
    emb = nn.Embedding(4, 3)
    emb.weight = W
    contexts = Tensor([[0, 2], [2, 3]], device=device)
    return emb(contexts), lambda: contexts.__setitem__((0, 0), 3)


SAME_READ_IN_TORCH = {
    "array": lambda t: t[[0, 2, 2]], "Tensor": lambda t: t[[0, 2, 2]], "list": lambda t: t[[0, 2, 2]],
    "tuple of arrays": lambda t: t[[0, 2, 2], [1, 1, 0]], "tuple of lists": lambda t: t[[0, 2, 2], [1, 1, 0]],
    "range and list": lambda t: t[[0, 1, 2], [1, 1, 0]], "Embedding": lambda t: t[torch.tensor([[0, 2], [2, 3]])],
}


@pytest.mark.parametrize("kind", SAME_READ_IN_TORCH.keys())
def test_index_changed_after_forward_still_routes_the_gradient(device, rng, kind):
    W0 = rng.standard_normal((4, 3))
    W = param(W0, device)
    out, change_the_index = index_case(kind, W, device)
    change_the_index()  # between forward and backward, as a loop reusing its batch array would
    g = rng.standard_normal(out.shape)
    out.backward(g)
    Wt = torch.tensor(W0, requires_grad=True)
    SAME_READ_IN_TORCH[kind](Wt).backward(torch.tensor(g))
    np.testing.assert_array_equal(host(W.grad), Wt.grad.numpy())


@pytest.mark.parametrize("as_tensor", [False, True], ids=["array", "Tensor"])
def test_targets_changed_after_forward_still_give_the_right_gradient(device, rng, as_tensor):
    logits0 = rng.standard_normal((5, 4))
    Y0 = np.array([3, 0, 3, 1, 2])
    Y = Tensor(Y0, device=device) if as_tensor else Tensor(Y0, device=device).data
    logits = param(logits0, device)
    loss = F.cross_entropy(logits, Y)
    Y[...] = 0  # reused for the next batch before backward
    loss.backward()
    z = torch.tensor(logits0, requires_grad=True)
    torch.nn.functional.cross_entropy(z, torch.tensor(Y0)).backward()
    np.testing.assert_allclose(host(logits.grad), z.grad.numpy(), rtol=1e-12, atol=1e-14)


# --- a gradient's shape is checked where it reaches a tensor ---------------------------------------------

class WrongShape(Function):
    """x * 2 whose backward forgets to sum a broadcast: g of out's shape (2, 3) for x (3,)."""

    def forward(self, x, other):
        return x * other

    def backward(self, g):
        return g * 2, None


class TooFewGradients(Function):
    """a * b whose backward returns one gradient for two inputs."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b,)


def test_a_backward_returning_the_wrong_shape_raises_naming_the_op(device):
    x = param([1.0, 2.0, 3.0], device)
    out = WrongShape.apply(x, Tensor(np.full((2, 3), 2.0), device=device))
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(2, 3\)"
                                           r" for an input of shape \(3,\)"):
        out.sum().backward()
    assert x.grad is None


def test_a_backward_returning_too_few_gradients_raises_naming_the_op(device):
    a, b = param([1.0, 2.0], device), param([3.0, 4.0], device)
    with pytest.raises(RuntimeError, match=r"TooFewGradients.backward returned 1 gradient.* 2 inputs"):
        TooFewGradients.apply(a, b).sum().backward()


class Unwritten(Function):
    """An exercise's op: the forward given, the backward still the learner's placeholder."""

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return ...


class BareArray(Unwritten):
    def backward(self, g):
        return 2 * g  # the gradient, but not in a tuple


def test_a_backward_still_a_placeholder_says_not_yet(device):
    x = param([1.0, 2.0], device)
    with pytest.raises(RuntimeError, match=r"Unwritten.backward returned \.\.\. : not yet written"):
        Unwritten.apply(x).sum().backward()
    with pytest.raises(GradcheckError, match=r"not yet written \(replace the \.\.\. with your code\)"):
        gradcheck(Unwritten.apply, [x])
    with pytest.raises(RuntimeError, match=r"BareArray.backward returned a \w+, not a tuple"):
        BareArray.apply(x).sum().backward()


@pytest.mark.parametrize("function", [WrongShape, TooFewGradients])
def test_gradcheck_fails_a_backward_of_the_wrong_shape(device, function):
    x = param([1.0, 2.0, 3.0], device)
    other = Tensor(np.full((2, 3), 2.0), device=device) if function is WrongShape else param([0.5, 1.5, 2.5], device)
    with pytest.raises((GradcheckError, RuntimeError), match=function.__name__):
        gradcheck(lambda x, o: function.apply(x, o), [x, other])


def test_assigning_a_grad_of_the_wrong_shape_or_dtype_raises(device):
    x = param([1.0, 2.0, 3.0], device)
    with pytest.raises(ValueError, match=r"shape \(3, 3\).*shape \(3,\)"):
        x.grad = Tensor(np.zeros((3, 3)), device=device)
    with pytest.raises(ValueError, match="shape"):
        x.grad = Tensor(np.zeros(1), device=device)  # would broadcast: still the wrong shape
    with pytest.raises(TypeError, match="float32.*float64"):
        x.grad = Tensor(np.zeros(3, np.float32), device=device)
    for p in (x, torch.zeros(3, requires_grad=True)):  # an array is not a gradient tensor, as in torch
        with pytest.raises(TypeError, match="assigned grad expected to be a Tensor or None"):
            p.grad = np.ones(3)
    assert x.grad is None
    x.grad = Tensor(np.full(3, 2.0), device=device)
    np.testing.assert_array_equal(host(x.grad), [2, 2, 2])
    x.grad = None
    assert x.grad is None


# --- empty batches ---------------------------------------------------------------------------------

def test_embedding_of_an_empty_batch_gives_a_zero_gradient(device):
    """As torch: a gather of no rows, and a scatter-add of nothing, into a zero gradient."""
    emb = nn.Embedding(27, 4).to(device=device)
    out = emb(np.zeros((0, 8), np.int64))
    assert out.shape == (0, 8, 4)
    out.backward(np.zeros(out.shape, np.float32))
    assert emb.weight.grad is not None and emb.weight.grad.shape == (27, 4)
    assert not host(emb.weight.grad).any()
    out = emb(np.zeros(0, np.int64))  # a flat empty batch too
    (out.sum() * 2).backward()
    assert emb.weight.grad.shape == (27, 4) and not host(emb.weight.grad).any()


def test_cross_entropy_of_no_rows_does_not_crash(device):
    logits = Tensor(np.zeros((0, 27)), requires_grad=True, device=device)
    with warnings.catch_warnings():  # a mean of nothing is NaN, as in torch (NumPy warns about it)
        warnings.simplefilter("ignore", RuntimeWarning)
        loss = F.cross_entropy(logits, np.zeros(0, np.int64))
        loss.backward()
    assert np.isnan(loss.item())
    assert torch.isnan(torch.nn.functional.cross_entropy(torch.zeros(0, 27), torch.zeros(0, dtype=torch.long)))
    assert logits.grad.shape == (0, 27)


def test_small_ops_of_part_4_on_an_empty_batch(device):
    """`logprobs[range(n), Yb]` with n = 0: an empty range is an empty integer index."""
    logprobs = Tensor(np.zeros((0, 27)), requires_grad=True, device=device)
    picked = logprobs[range(0), np.zeros(0, np.int64)]
    assert picked.shape == (0,)
    picked.sum().backward()
    assert logprobs.grad.shape == (0, 27)
    assert Tensor(np.ones((3, 2)), device=device)[[]].shape == (0, 2)


def test_batch_norm_of_an_empty_batch_raises_its_clear_error(device):
    model = nn.Sequential([nn.Embedding(27, 4), nn.FlattenConsecutive(8), nn.Linear(32, 5), nn.BatchNorm1d(5)])
    model.to(device=device)
    with pytest.raises(ValueError, match="batch norm in training needs more than 1 value"):
        model(np.zeros((0, 8), np.int64))


# --- Module.to is all or nothing -----------------------------------------------------------------------

def snapshot(model):
    return [(t, t._data, t.dtype, t.device, t.grad, t._version[0]) for _, t, _ in model.named_tensors()]


def assert_unchanged(model, before):
    tensors = list(model.named_tensors())
    assert len(tensors) == len(before)
    for (t, data, dtype, device, grad, version), (_, now, _) in zip(before, tensors):
        assert now is t and t._data is data and t.dtype == dtype and t.device == device
        assert t.grad is grad and t._version[0] == version


def small_model():
    model = nn.Sequential([nn.Embedding(5, 2), nn.FlattenConsecutive(2), nn.Linear(4, 3), nn.BatchNorm1d(3)])
    F.cross_entropy(model(np.array([[0, 1], [2, 3]])), [0, 2]).backward()  # some grads to move too
    return model


def test_module_to_an_integer_dtype_fails_before_changing_anything():
    model = small_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match="float dtype"):
        model.to(dtype="int64")
    assert_unchanged(model, before)


@pytest.mark.parametrize("fail_at", [1, 4, 9])
def test_module_to_failing_midway_leaves_the_model_as_it_was(monkeypatch, fail_at):
    """A conversion that fails after some tensors were converted (out of memory on the
    GPU, say): none of them may have changed."""
    model = small_model()
    before = snapshot(model)
    calls, to_array = [0], backend.to_array

    def failing_to_array(*args, **kwargs):
        calls[0] += 1
        if calls[0] == fail_at:
            raise MemoryError("out of device memory (injected)")
        return to_array(*args, **kwargs)

    monkeypatch.setattr(backend, "to_array", failing_to_array)
    with pytest.raises(MemoryError, match="injected"):
        model.to(dtype="float64")
    assert calls[0] == fail_at
    assert_unchanged(model, before)
    monkeypatch.undo()
    model.to(dtype="float64")  # and then it works
    assert all(t.dtype == np.float64 for _, t, _ in model.named_tensors())
    assert all(t.grad is None or t.grad.dtype == np.float64 for _, t, _ in model.named_tensors())


def test_module_to_cuda_without_a_gpu_leaves_the_model_on_the_cpu(without_cupy):
    model = small_model()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="CuPy|GPU"):
        model.to(device="cuda")
    assert_unchanged(model, before)


# --- grad mode is per thread ---------------------------------------------------------------------

def run_threads(*targets):
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_no_grad_in_one_thread_does_not_affect_another():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def in_no_grad():
        with no_grad():
            inside.set()
            assert checked.wait(10)
            seen["no_grad thread"] = is_grad_enabled()

    def other():
        assert inside.wait(10)
        x = Tensor(np.ones(2), requires_grad=True)
        seen["other thread"] = is_grad_enabled(), (x * 2).grad_fn is not None
        checked.set()

    run_threads(in_no_grad, other)
    assert seen == {"no_grad thread": False, "other thread": (True, True)}
    assert is_grad_enabled()


def test_overlapping_no_grad_blocks_in_two_threads_leave_grad_mode_on():
    """A enters, B enters, A leaves, B leaves: a process-global flag would be left off."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def a():
        with no_grad():
            a_in.set()
            assert b_in.wait(10)
        a_out.set()
        after["a"] = is_grad_enabled()

    def b():
        assert a_in.wait(10)
        with no_grad():
            b_in.set()
            assert a_out.wait(10)
            after["b inside"] = is_grad_enabled()
        after["b"] = is_grad_enabled()

    run_threads(a, b)
    assert after == {"a": True, "b inside": False, "b": True}
    assert is_grad_enabled()
    x = Tensor(np.ones(2), requires_grad=True)
    assert (x * 2).requires_grad


def test_a_new_thread_starts_with_grad_on_even_inside_no_grad():
    seen = []
    with no_grad():
        run_threads(lambda: seen.append(is_grad_enabled()))
        assert not is_grad_enabled()
    assert seen == [True]


# --- small conversions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [int, "int64", "int32", bool])
def test_to_an_integer_dtype_leaves_the_graph(device, dtype):
    x = param([1.7, -2.2, 0.0], device)
    y = x.to(dtype=dtype)
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    np.testing.assert_array_equal(y.numpy(), np.array([1.7, -2.2, 0.0]).astype(dtype))
    assert x.long().dtype == np.int64 and not x.long().requires_grad


@pytest.mark.parametrize("data, truth", [(2.0, True), (0.0, False), ([0.5], True), ([[0]], False),
                                         (np.array([[[-1]]]), True)], ids=str)
def test_bool_of_one_element_is_its_truth_value(device, data, truth):
    assert bool(Tensor(data, device=device)) is truth
    assert bool(Tensor(data, device=device)) == bool(torch.tensor(data))


@pytest.mark.parametrize("shape", [(2,), (2, 3), (0,)], ids=str)
def test_bool_of_more_or_fewer_elements_raises(device, shape):
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(Tensor(np.ones(shape), device=device))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(torch.ones(shape))


def test_np_asarray_gives_the_data(device):
    x = param([[1.0, 2.0], [3.0, 4.0]], device)
    array = np.asarray(x)
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    np.testing.assert_array_equal(array, [[1, 2], [3, 4]])
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(np.array(x * 2), [[2, 4], [6, 8]])
    assert np.asarray(Tensor(3, device=device)).shape == ()


@pytest.mark.parametrize("data", [None, "abc", ["a", "b"], {"a": 1}, object()], ids=repr)
def test_tensor_of_something_that_is_not_numbers_raises(data):
    with pytest.raises(TypeError, match="cannot make a tensor"):
        Tensor(data)
