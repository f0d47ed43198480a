"""What a Tensor and a Module promise beyond the gradient formulas: who owns
which memory, what survives a cast, and the edges of dims, dtypes and indices."""
import numpy as np
import pytest

import tinygrad_wave.functional as F
import tinygrad_wave.makemore_layers as nn
from tinygrad_wave import Tensor, optim, zeros
from tinygrad_wave.autograd import Function
from tinygrad_wave.data import DataError, build_dataset, split_words


def test_to_a_dtype_stays_in_the_graph():
    x = Tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    y = (x * 2).to(dtype="float64")
    assert y.dtype == np.float64 and y.grad_fn.name == "To"
    y.backward(np.array([1.0, 10.0, 100.0]))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 20, 200])


def test_a_tensor_copies_the_array_it_is_made_from():
    w0 = np.ones(3, np.float32)
    w = Tensor(w0, requires_grad=True)
    (w * 2).sum().backward()
    optim.SGD([w], lr=0.5).step()
    np.testing.assert_array_equal(w0, [1, 1, 1])  # the caller's array is untouched
    np.testing.assert_array_equal(w.numpy(), [0, 0, 0])


def test_load_state_dict_copies_in_and_keeps_the_tensors():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    state = a.state_dict()
    weight = b.weight
    b.load_state_dict(state)
    assert b.weight is weight  # an optimiser holding it keeps working
    b.weight.data -= 1.0
    np.testing.assert_array_equal(state["weight"], a.weight.numpy())  # the dict did not move
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] has shape \(2, 3\)"):
        b.load_state_dict(dict(state, weight=state["weight"].T))


def test_a_leaf_grad_is_not_the_callers_upstream_array():
    x = Tensor(np.ones(3), requires_grad=True)
    g = np.ones(3)
    (x + 1).backward(g)
    g[0] = 100.0
    np.testing.assert_array_equal(x.grad, [1, 1, 1])


def test_two_leaves_never_share_one_grad_array():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    (a + b).backward(np.ones(2))
    a.grad *= 5  # in place, as a user may
    np.testing.assert_array_equal(b.grad, [1, 1])


def test_the_index_array_is_read_at_forward_time():
    W = Tensor(np.zeros((3, 2)), requires_grad=True)
    ix = np.array([0, 1])
    out = W[ix]
    ix[:] = 2  # changed before backward: the gradient must still go to rows 0 and 1
    out.backward(np.ones((2, 2)))
    np.testing.assert_array_equal(W.grad, [[1, 1], [1, 1], [0, 0]])


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32"])
def test_small_integer_indices_scatter_correctly(dtype):
    W = Tensor(np.zeros((300, 1)), requires_grad=True)
    ix = np.array([5, 5, 120], dtype=dtype)
    W[ix].backward(np.ones((3, 1)))
    assert W.grad[5, 0] == 2 and W.grad[120, 0] == 1 and W.grad.sum() == 3


def test_power_zero_has_zero_gradient_at_zero():
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [0, 0])


def test_an_op_that_sends_no_gradient_back_leaves_its_parents_without_one():
    class Stop(Function):  # passes values through, gradient stopped
        def forward(self, x):
            return x

        def backward(self, g):
            return (None,)

    x = Tensor(np.ones(2), requires_grad=True)
    y = x * 3
    (Stop.apply(y) + x).backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [1, 1])  # only the direct path


def test_dims_of_0d_tensors_and_repeated_dims():
    s = Tensor(np.array(3.0), requires_grad=True)
    assert s.sum(0).item() == 3.0 and s.mean(-1).item() == 3.0
    x = Tensor(np.ones((2, 3)))
    assert x.sum(np.int64(1)).shape == (2,)
    with pytest.raises(ValueError, match="same dim twice"):
        x.sum((1, -1))
    with pytest.raises(TypeError, match="one dim"):
        F.softmax(x, dim=(0, 1))


def test_factories_take_a_shape_as_ints_or_one_tuple():
    assert zeros(2, 3).shape == zeros((2, 3)).shape == (2, 3)


def test_a_shared_tensor_is_one_parameter():
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight  # tied: SGD must update it once, not twice
    params = nn.Sequential([first, second]).parameters()
    assert len(params) == 3 and params[0] is first.weight


def test_module_to_refuses_an_integer_dtype_for_parameters():
    with pytest.raises(ValueError, match="float dtype"):
        nn.Linear(2, 2).to(dtype="int64")


def test_data_accepts_a_tensor_and_batch_norm_wants_both_buffers():
    t = Tensor(np.zeros(2, np.float32))
    t.data = Tensor(np.ones(2, np.float32))
    np.testing.assert_array_equal(t.numpy(), [1, 1])
    x = Tensor(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)
    g, b = Tensor(np.ones(2)), Tensor(np.zeros(2))
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        F.batch_norm(x, g, b, 0, running_mean=Tensor(np.zeros(2)))


def test_too_few_names_for_a_split_and_empty_datasets_stay_integer():
    with pytest.raises(DataError, match="too few"):
        split_words(["ab", "cd", "ef"])
    X, Y = build_dataset([], 3, ".ab")
    assert X.shape == (0, 3) and X.dtype == np.int64 and Y.dtype == np.int64
