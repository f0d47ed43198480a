"""The CuPy stand-in keeps CuPy's boundaries (its docstring's numbered rules): a stand-in
that let a host array through would pass the CUDA variants for nothing."""
import math
import operator

import numpy as np
import pytest

import cupy_standin as cp


@pytest.fixture
def x():
    return cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: np.array2string(a),
                                     lambda a: np.random.default_rng(0).permutation(a)],
                         ids=["asarray", "array", "array2string", "permutation"])
def test_rule_1_no_implicit_conversion_to_numpy(x, convert):
    with pytest.raises(TypeError, match="Implicit conversion|no implementation found|Unsupported type"):
        result = convert(x)
        assert not isinstance(result, (np.ndarray, str)), "a device array reached NumPy"


def test_rule_1_the_explicit_ways_home(x):
    assert type(x.get()) is np.ndarray and type(cp.asnumpy(x)) is np.ndarray
    one = x[1, 2]
    assert (float(one), int(one), bool(one), one.item(), x.tolist()[1][2]) == (5.0, 5, True, 5.0, 5.0)
    assert f"{one:.1f}" == "5.0" and repr(x) == repr(x.get())


def test_rule_2_numpy_calls_dispatch_to_the_device(x):
    assert isinstance(np.exp(x), cp.ndarray) and isinstance(np.sum(x, axis=0), cp.ndarray)
    assert isinstance(np.where(x > 2, x, 0), cp.ndarray)


@pytest.mark.parametrize("mix", [operator.add, operator.mul, operator.truediv, operator.matmul, operator.lt,
                                 lambda a, h: cp.where(a > 0, a, h), lambda a, h: cp.maximum(a, h),
                                 lambda a, h: cp.concatenate([a, h])],
                         ids=["add", "mul", "div", "matmul", "lt", "where", "maximum", "concatenate"])
@pytest.mark.parametrize("host", [np.ones((2, 3), np.float32), np.ones((3, 3), np.float32).T, np.array(1, np.float32)],
                         ids=["2-d", "view", "0-d"])
def test_rule_3_a_numpy_array_never_mixes_with_a_device_array(x, mix, host):
    if mix is operator.matmul and host.ndim == 0:
        pytest.skip("matmul takes no 0-d operand anywhere")
    if mix is operator.lt and host.ndim == 0:
        assert isinstance(mix(x, host), cp.ndarray)  # CuPy's one exception: a 0-d array compared is a number
        return
    with pytest.raises(TypeError, match="Unsupported type|only cupy|NotImplemented|not supported"):
        mix(x, host)
    if mix in (operator.add, operator.mul, operator.truediv, operator.matmul):
        with pytest.raises(TypeError):
            mix(host, x)  # NumPy on the left hands the op to the device array, which refuses
    with pytest.raises(TypeError):
        x[...] += host if host.ndim else np.ones(3, np.float32)


def test_rule_4_scalars_mix_by_numpys_promotion(x):
    assert (x * 2.0).dtype == np.float32 and (x * np.float64(2)).dtype == np.float64
    assert isinstance(x + np.int64(1), cp.ndarray)


def test_rule_5_reductions_and_scalar_indexing_give_0d_device_arrays(x):
    for value in (x.sum(), x.max(), x[0, 0], cp.sum(x), x.mean(axis=None)):
        assert isinstance(value, cp.ndarray) and value.shape == ()


def test_rule_6_no_index(x):
    n = cp.asarray(2)
    with pytest.raises(TypeError):
        range(n)
    with pytest.raises(TypeError):
        [1, 2, 3][n]
    assert math.isclose(float(n), 2)


def test_rule_7_host_index_arrays_allowed_host_values_through_basic_indices_refused(x):
    np.testing.assert_array_equal(x[np.array([1, 0])].get(), x.get()[[1, 0]])
    np.testing.assert_array_equal(x[[1, 0], [2, 2]].get(), [5, 2])
    x[np.array([0])] = np.full((1, 3), 7, np.float32)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        x[0] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        x[:, :1] = [[1.0], [2.0]]
    x[1] = cp.zeros(3, np.float32)
    x[0, 0] = np.float32(3)
    np.testing.assert_array_equal(x.get(), [[3, 7, 7], [0, 0, 0]])


def test_rule_8_integer_index_arrays_wrap_python_ints_do_not(x):
    np.testing.assert_array_equal(x[cp.asarray([2, -1]), 0].get(), [0, 3])  # row 2 of 2 is row 0
    np.testing.assert_array_equal(x[..., np.array([4])].get(), [[1], [4]])
    with pytest.raises(IndexError):
        x[2]


def test_rule_9_asarray_copies_host_data():
    host = np.zeros(3)
    device = cp.asarray(host)
    host[0] = 1
    assert device.get()[0] == 0


def test_rule_10_add_at_accumulates_refuses_dtypes_without_atomic_add():
    out = cp.zeros((3, 2), np.float32)
    cp.add.at(out, cp.asarray([0, 2, 0]), cp.ones((3, 2), np.float32))
    np.testing.assert_array_equal(out.get()[:, 0], [2, 0, 1])
    np.add.at(out, cp.asarray([1]), cp.ones((1, 2), np.float32))  # NumPy's spelling dispatches
    np.testing.assert_array_equal(out.get()[:, 0], [2, 1, 1])
    with pytest.raises(TypeError, match="only supports"):
        cp.add.at(cp.zeros(3, np.int16), cp.asarray([0]), cp.ones(1, np.int16))
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add.at(np.zeros(3), cp.asarray([0]), 1.0)


def test_rule_11_what_cupy_lacks_is_missing(x):
    for name in ("tofile", "data", "ctypes"):
        with pytest.raises(AttributeError):
            getattr(x, name)
    assert not hasattr(cp, "random") and not hasattr(cp.cuda, "Stream")
    with pytest.raises(TypeError, match="no implementation found"):
        np.unravel_index(x, (2, 3))


def test_rule_12_one_device_that_synchronizes():
    assert cp.cuda.runtime.getDeviceCount() == 1
    cp.cuda.Device().synchronize()
