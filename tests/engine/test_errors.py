"""Bad input gets a clear error, and the engine's rules about dtypes and the graph hold.

A teaching engine is used by people who are still learning which shapes go
where, so a mistake must fail loudly, at the op that made it, with a message
that names what was wrong -- never quietly broadcast, wrap around or return NaN.
The second half pins down the rules a user relies on without thinking:
which dtype a tensor gets, that .grad accumulates, that no_grad records
nothing and that backward frees the graph.
"""
import numpy as np
import pytest

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, no_grad


def assert_names_shapes(excinfo, *shapes):
    """The error message names every one of `shapes` (spaces ignored: NumPy writes (3,4))."""
    message = str(excinfo.value).replace(" ", "")
    for shape in shapes:
        assert str(tuple(shape)).replace(" ", "") in message, f"{shape} not named in: {excinfo.value}"


def ones(*shape, device="cpu", requires_grad=False):
    return Tensor(np.ones(shape), requires_grad=requires_grad, device=device)


# --- shape mismatches name both shapes -------------------------------------------------------------------

@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / b],
                         ids=["add", "mul", "sub", "div"])
@pytest.mark.parametrize("shapes", [((3, 4), (5,)), ((2, 3), (3, 2)), ((4, 1, 3), (2, 2))], ids=str)
def test_broadcast_failure_names_both_shapes(device, op, shapes):
    a, b = (ones(*s, device=device) for s in shapes)
    with pytest.raises(ValueError) as excinfo:
        op(a, b)
    assert_names_shapes(excinfo, *shapes)


@pytest.mark.parametrize("shapes", [((2, 3), (4, 5)), ((2, 3, 4), (5, 6)), ((2, 3, 4), (3, 4, 5)),
                                    ((3, 5), (4,)), ((4,), (5, 2))], ids=str)
def test_matmul_mismatch_names_both_shapes(device, shapes):
    """Including 1-D operands: the message names the shapes the user wrote, not the
    1-row / 1-column matrices a vector is turned into on the way."""
    a, b = (ones(*s, device=device) for s in shapes)
    with pytest.raises(ValueError) as excinfo:
        a @ b
    assert_names_shapes(excinfo, *shapes)


def test_view_mismatch_names_both_shapes(device):
    with pytest.raises(ValueError) as excinfo:
        ones(2, 3, device=device).view(4, 2)
    assert_names_shapes(excinfo, (2, 3), (4, 2))


@pytest.mark.parametrize("dim", [3, -4, (0, 3)], ids=str)
def test_dim_out_of_range(device, dim):
    with pytest.raises(IndexError, match="out of range"):
        ones(2, 3, 4, device=device).sum(dim)


# --- layers and fused ops --------------------------------------------------------------------------------

@pytest.mark.parametrize("ix", [[0, 7], [-1, 2], [[1, 2], [3, -7]], 7, -1], ids=str)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["ids", "Tensor"])
def test_embedding_index_out_of_range(device, ix, as_tensor):
    """A negative id is a bug in the data, not "the last row" as NumPy would read it."""
    emb = nn.Embedding(7, 3).to(device=device)
    with pytest.raises(IndexError, match="out of range"):
        emb(Tensor(np.array(ix), device=device) if as_tensor else ix)


@pytest.mark.parametrize("index", [[0, 5], np.array([-6]), (slice(None), [4]), (Ellipsis, np.array([[4]])),
                                   (None, 1, [0, 4]), ([0, 1], [1, -5])], ids=str)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["array", "Tensor"])
def test_index_array_out_of_range(device, index, as_tensor):
    """An integer index array past its dim is torch's and NumPy's IndexError on every device
    (CuPy alone would wrap it around and read another row), in a read and in a write."""
    t = Tensor(np.zeros((3, 4)), device=device)
    if as_tensor:
        index = tuple(Tensor(np.array(p), device=device) if isinstance(p, (list, np.ndarray)) else p
                      for p in (index if isinstance(index, tuple) else (index,)))
    with pytest.raises(IndexError, match="out of bounds"):
        t[index]
    with pytest.raises(IndexError, match="out of bounds"):
        t[index] = 1.0
    assert not t.numpy().any()


def test_embedding_float_indices(device):
    with pytest.raises(TypeError, match="integer"):
        nn.Embedding(7, 3).to(device=device)(np.array([0.0, 1.0]))


@pytest.mark.parametrize("x_shape", [(1, 3), (1, 1, 3)], ids=str)
def test_batch_norm_training_needs_two_values_per_channel(device, x_shape):
    """The unbiased variance of a single value is 0 / 0: refuse it instead of returning NaN."""
    layer = nn.BatchNorm1d(3).to(device=device)
    with pytest.raises(ValueError, match="batch norm in training"):
        layer(Tensor(np.ones(x_shape, np.float32), device=device))
    layer.eval()  # in eval mode the running statistics are used: one example is fine
    assert layer(Tensor(np.ones(x_shape, np.float32), device=device)).shape == x_shape


def test_batch_norm_1d_wants_2d_or_3d_input(device):
    with pytest.raises(ValueError, match=r"\(B, C\) or \(B, T, C\)"):
        nn.BatchNorm1d(3).to(device=device)(ones(3, device=device))


@pytest.mark.parametrize("targets", [[0, 3], [-1, 0], [0, 99]], ids=str)
def test_cross_entropy_target_out_of_range(device, targets):
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        F.cross_entropy(ones(2, 3, device=device, requires_grad=True), targets)


def test_cross_entropy_target_count_and_type(device):
    logits = ones(2, 3, device=device)
    with pytest.raises(ValueError, match="targets of shape"):
        F.cross_entropy(logits, [0, 1, 2])
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected \(2, 4\)"):  # (N, C, d): the classes along dim 1, as torch
        F.cross_entropy(ones(2, 3, 4, device=device), [0, 1])
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(ones(3, device=device).sum(), [0])  # a 0-d tensor
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, [0, 1], reduction="average")


def test_flatten_consecutive_indivisible_time(device):
    with pytest.raises(ValueError) as excinfo:
        nn.FlattenConsecutive(3)(ones(2, 8, 4, device=device))
    assert_names_shapes(excinfo, (2, 8, 4))


def small_model():
    return nn.Sequential([nn.Linear(4, 3), nn.BatchNorm1d(3)])


def test_load_state_dict_missing_or_unexpected_key():
    state = small_model().state_dict()
    del state["layers.1.running_var"]
    with pytest.raises(KeyError, match="layers.1.running_var"):
        small_model().load_state_dict(state)
    state = small_model().state_dict()
    state["layers.2.weight"] = np.ones(3)
    with pytest.raises(KeyError, match="layers.2.weight"):
        small_model().load_state_dict(state)


def test_load_state_dict_wrong_shape():
    state = small_model().state_dict()
    state["layers.0.weight"] = np.ones((3, 4))  # transposed
    with pytest.raises(ValueError) as excinfo:
        small_model().load_state_dict(state)
    assert_names_shapes(excinfo, (3, 4), (4, 3))


# --- backward misuse -------------------------------------------------------------------------------------

def test_backward_on_non_scalar_needs_grad(device):
    y = ones(2, 3, device=device, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="non-scalar"):
        y.backward()


def test_backward_with_grad_of_wrong_shape(device):
    y = ones(2, 3, device=device, requires_grad=True) * 2
    with pytest.raises(ValueError) as excinfo:
        y.backward(np.ones((3, 2)))
    assert_names_shapes(excinfo, (3, 2), (2, 3))


def test_backward_twice_through_a_freed_graph(device):
    x = ones(3, device=device, requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()


def test_backward_through_a_shared_part_that_was_freed(device):
    """Two losses sharing h = x * x: the first backward frees h's node too."""
    x = ones(3, device=device, requires_grad=True)
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="freed"):
        (h * 3).sum().backward()


def test_backward_on_a_tensor_without_grad(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        (ones(3, device=device) * 2).sum().backward()


def test_requires_grad_on_an_int_tensor(device):
    with pytest.raises(RuntimeError, match="floating-point"):
        Tensor([1, 2, 3], requires_grad=True, device=device)
    t = Tensor(np.arange(3), device=device)
    with pytest.raises(RuntimeError, match="floating-point"):
        t.requires_grad = True


def test_requires_grad_only_changes_on_a_leaf(device):
    y = ones(3, device=device, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_item_needs_one_element(device):
    with pytest.raises(ValueError, match="one element"):
        ones(2, device=device).item()


def test_pow_needs_a_number(device):
    with pytest.raises(TypeError, match="exponent"):
        ones(2, device=device) ** ones(2, device=device)


# --- devices -----------------------------------------------------------------------------------------------

def test_cuda_without_cupy_names_cupy(without_cupy):
    with pytest.raises(RuntimeError, match="CuPy"):
        Tensor([1.0, 2.0], device="cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        nn.Linear(2, 3).to(device="cuda")


@pytest.mark.parametrize("make", [lambda d: Tensor([1.0], device=d), lambda d: Tensor([1.0]).to(d),
                                  lambda d: nn.Linear(2, 3).to(device=d)], ids=["Tensor", "Tensor.to", "Module.to"])
@pytest.mark.parametrize("name", ["gpu", "tpu", "CUDA", "cuda:0"])
def test_unknown_device(make, name):
    with pytest.raises(ValueError, match="unknown device"):
        make(name)


# --- dtype rules, as torch's ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32),                       # a Python float
    ([1.0, 2.0], np.float32),                # a list of floats
    ([[1.0], [2]], np.float32),              # nested, mixed with ints
    (3, np.int64),                           # a Python int
    ([1, 2], np.int64),
    (np.array([1.0, 2.0]), np.float64),      # an ndarray keeps its dtype
    (np.float64(1.5), np.float64),           # ... and so does a NumPy scalar
    (np.array([1.0], np.float32), np.float32),
    (np.arange(3), np.int64),
    (np.arange(3, dtype=np.int32), np.int32),
], ids=str)
def test_dtype_of_new_tensors(device, data, dtype):
    assert Tensor(data, device=device).dtype == dtype


def test_explicit_dtype_wins(device):
    assert Tensor([1.0, 2.0], dtype=np.float64, device=device).dtype == np.float64
    assert Tensor(np.ones(2), dtype="float32", device=device).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [lambda x: x * 0.1, lambda x: 0.1 * x, lambda x: x + 1, lambda x: 2 - x,
                                lambda x: x / 3, lambda x: 1.5 / x, lambda x: x ** 2, lambda x: x ** 0.5,
                                lambda x: x.var(), lambda x: x.mean(0), lambda x: x.tanh().exp().log()],
                         ids=["x*0.1", "0.1*x", "x+1", "2-x", "x/3", "1.5/x", "x**2", "x**0.5",
                              "var", "mean", "tanh exp log"])
def test_python_numbers_keep_the_tensor_dtype(device, dtype, op):
    """x * 0.1 stays float32: a Python number never promotes a tensor to float64 (nor its gradient)."""
    x = Tensor(np.full((2, 3), 2.0, dtype), requires_grad=True, device=device)
    out = op(x)
    assert out.dtype == dtype
    out.backward(np.ones(out.shape))
    assert x.grad.dtype == dtype


# --- gradients and the graph ---------------------------------------------------------------------------

def test_grad_accumulates_across_backward_calls(device):
    """As in torch: two backward passes add up in .grad until someone zeroes it."""
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, device=device)
    (x * x).sum().backward()  # d/dx = 2x
    (x * 3).sum().backward()  # d/dx = 3
    np.testing.assert_array_equal(Tensor(x.grad, device=device).numpy(), [5.0, -1.0, 9.0])


def test_no_grad_records_nothing(device):
    x = ones(3, device=device, requires_grad=True)
    with no_grad():
        y = (x * 2).tanh().sum()
    assert y.requires_grad is False and y.grad_fn is None
    z = x * 2  # recording is back on after the block
    assert z.requires_grad and z.grad_fn is not None


def test_no_grad_is_restored_after_an_error(device):
    x = ones(3, device=device, requires_grad=True)
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert (x * 2).grad_fn is not None


def test_detach_leaves_the_graph(device):
    x = ones(3, device=device, requires_grad=True)
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad


def test_backward_frees_the_graph(device):
    """After backward every node drops its inputs and saved arrays: memory goes back at once."""
    x = ones(2, 3, device=device, requires_grad=True)
    h = (x * x).tanh()
    loss = (h * x).sum()
    nodes = [loss.grad_fn, h.grad_fn]
    loss.backward()
    assert loss.grad_fn.inputs is None
    for node in nodes:
        assert node.inputs is None
        assert not vars(node), f"{node} still holds {list(vars(node))}"
