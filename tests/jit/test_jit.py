"""jit.capture: a replayed step is the eager step, bit for bit; what cannot be replayed is refused.

Every comparison here is exact (bytes equal), never a tolerance: a replay runs the
same forward and backward methods on the same arrays in the same order, so any
difference at all is a bug.
"""
import tracemalloc

import numpy as np
import pytest

from tinygrad_wave import Tensor, jit, manual_seed, no_grad, watch
from tinygrad_wave import makemore_layers as nn
from tinygrad_wave import functional as F
from tinygrad_wave.jit import CaptureError
from tinygrad_wave.models import PRESETS, build_model
from tinygrad_wave.optim import SGD


def same_bits(a, b, what):
    a, b = (x.numpy() if isinstance(x, Tensor) else x for x in (a, b))
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert a.tobytes() == b.tobytes(), what


def training_step(dtype, momentum=0.0, weight_decay=0.0):
    """makemore part 5's model (the 22K preset, for speed) and its training step."""
    manual_seed(7)
    model = build_model(27, **PRESETS["hier22k"]).to("cpu", dtype)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)

    def step(Xb, Yb):
        loss = F.cross_entropy(model(Xb), Yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss
    return model, optimizer, step


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    return rng, rng.integers(0, 27, (2000, 8)), rng.integers(0, 27, 2000)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_replay_is_the_eager_step_bit_for_bit_over_1000_steps(dtype, data):
    rng, X, Y = data
    eager_model, eager_opt, eager_step = training_step(dtype)
    model, optimizer, step = training_step(dtype)
    replayed = jit.capture(step)
    for i in range(1000):
        if i == 600:  # the learning-rate decay, set between steps: step() reads it when replayed
            eager_opt.lr = optimizer.lr = 0.01
        ix = rng.integers(0, len(X), 32)
        same_bits(eager_step(X[ix], Y[ix]), replayed(X[ix], Y[ix]), f"loss at step {i}")
    assert (replayed.eager, replayed.replayed) == (2, 998)  # two recorded calls, then replays
    eager_tensors, tensors = list(eager_model.named_tensors()), list(model.named_tensors())
    assert len(eager_tensors) == len(tensors)
    for (name, a, _), (_, b, _) in zip(eager_tensors, tensors):
        same_bits(a, b, name)
        if a.grad is not None or b.grad is not None:
            same_bits(a.grad, b.grad, f"{name}.grad")
    assert len(eager_tensors) == 1 + 3 * 5 + 2  # embedding, 3 x (weight, gamma, beta, 2 buffers), out weight, bias


def test_momentum_weight_decay_and_new_batch_sizes(data):
    """The optimiser's state lives in its own step(), which the replay calls; a new batch
    size is a new signature, captured on its own and replayed when it comes back."""
    rng, X, Y = data
    _, _, eager_step = training_step("float64", momentum=0.9, weight_decay=1e-3)
    _, _, step = training_step("float64", momentum=0.9, weight_decay=1e-3)
    replayed = jit.capture(cache_size=2)(step)
    for i, batch in enumerate([32, 32, 32, 17, 17, 17, 32, 5, 5, 5, 17, 17]):
        ix = rng.integers(0, len(X), batch)
        same_bits(eager_step(X[ix], Y[ix]), replayed(X[ix], Y[ix]), f"loss at call {i}")
    # 32: 2 eager + 2 replays; 17: 2 + 1; 5: 2 + 1, which evicts 32 (cache of 2); 17 replays twice more
    assert (replayed.eager, replayed.replayed) == (6, 6)


def many_ops(w):
    def f(x, k):
        h = (x @ w).tanh()
        y = h / (h.exp() + 1.5) + (h * h) ** 1.5 - x[:, :3].T.sum(0, keepdim=True).T
        z = (y.sigmoid() + 1).log().max(dim=1).values * k + h[:, 1]
        w.grad = None
        out = (z * 0.5).mean()
        out.backward()
        return out, z
    return f


def test_many_ops_tensor_arguments_and_a_tuple_result():
    """Ops beyond the model's (division, powers, exp/log, max, transpose, slices, a tensor
    used twice, constants made inside), gradients into an argument that requires grad,
    and a tuple result: all as eager mode gives them."""
    rng = np.random.default_rng(0)
    w_data = rng.standard_normal((4, 3))
    w, w_eager = Tensor(w_data, requires_grad=True), Tensor(w_data, requires_grad=True)
    replayed, eager = jit.capture(many_ops(w)), many_ops(w_eager)
    for i in range(4):
        x_data = rng.standard_normal((6, 4))
        x, x_eager = Tensor(x_data, requires_grad=True), Tensor(x_data, requires_grad=True)
        (out, z), (out_e, z_e) = replayed(x, 2.0), eager(x_eager, 2.0)
        same_bits(out, out_e, f"out at call {i}")
        same_bits(z, z_e, f"z at call {i}")
        same_bits(x.grad, x_eager.grad, f"x.grad at call {i}")
        same_bits(w.grad, w_eager.grad, f"w.grad at call {i}")
    assert replayed.replayed == 2


def chain(op):
    """f(x): eight ops in a row on 1 MB arrays after x * w, then backward into w."""
    def f(x, w):
        y = x * w  # saves x, for w's gradient (and not w: x needs none)
        for _ in range(8):
            y = op(y)
        loss = y.sum()
        loss.backward()
        return loss
    return f


@pytest.mark.parametrize("op", [lambda y: y + 1.0, lambda y: y * 0.5], ids=["add", "scale"])
def test_a_replay_lets_go_of_each_array_after_its_last_use(op):
    """A replay holds an op's output only until the last step that reads it, as eager code
    drops a tensor it rebinds, and a node keeps only what its backward reads (y * 0.5
    keeps nothing of y): three 1 MB arrays at once here at most (the current y and the next,
    x * w's output; in backward, the gradients), not all nine outputs of the call."""
    x = np.ones((512, 512), dtype=np.float32)
    w = Tensor(np.ones((512, 512), dtype=np.float32), requires_grad=True)
    replayed = jit.capture(chain(op))
    replayed(x, w), replayed(x, w)  # the capture
    tracemalloc.start()
    try:
        replayed(x, w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert replayed.replayed == 1
    assert peak < 3.5 * x.nbytes, f"{peak / x.nbytes:.1f} arrays of 1 MB at once"  # (and a few small objects)


# --- guards: range checks still run --------------------------------------------------------

def test_bad_indices_and_targets_raise_the_eager_errors_after_capture(data):
    rng, X, Y = data
    model, _, step = training_step("float32")
    replayed = jit.capture(step)
    for _ in range(3):
        replayed(X[:32], Y[:32])
    assert replayed.replayed == 1
    bad_x = X[:32].copy()
    bad_x[5, 2] = 27
    with pytest.raises(IndexError, match="Embedding index out of range"):
        replayed(bad_x, Y[:32])
    bad_x[5, 2] = -1  # NumPy would read row -1 silently: eager refuses, so must the replay
    with pytest.raises(IndexError, match="Embedding index out of range"):
        replayed(bad_x, Y[:32])
    bad_y = Y[:32].copy()
    bad_y[0] = 30
    with pytest.raises(IndexError, match="target class ids"):
        replayed(X[:32], bad_y)


def test_ignored_targets_are_replayed_too(data):
    rng, X, Y = data
    _, _, eager_step = training_step("float64")
    _, _, step = training_step("float64")
    replayed = jit.capture(step)
    for i in range(5):
        y = Y[:32].copy()
        y[rng.integers(0, 32, 4)] = -100  # ignore_index: left out of the mean
        same_bits(eager_step(X[:32], y), replayed(X[:32], y), f"loss at call {i}")
    assert replayed.replayed == 3


# --- refusals ----------------------------------------------------------------------------

def capture_twice(fn, *args):
    replayed = jit.capture(fn)
    replayed(*args)
    replayed(*args)
    return replayed


def test_reading_a_value_inside_is_refused(data):
    _, X, Y = data
    model, _, _ = training_step("float32")

    def f(Xb, Yb):
        loss = F.cross_entropy(model(Xb), Yb)
        if loss.item() > 10:  # Python branching on data: a replay could not follow it
            loss = loss * 0.5
        return loss
    with pytest.raises(CaptureError, match=r"\.item\(\) inside the captured function"):
        jit.capture(f)(X[:32], Y[:32])
    assert watch.watcher is None  # the hooks are off again: eager mode goes on as before
    assert F.cross_entropy(model(X[:32]), Y[:32]).item() > 0


def test_random_draws_inside_are_refused():
    layer, w = nn.Dropout(0.5), Tensor(np.ones((4, 4)), requires_grad=True)
    with pytest.raises(CaptureError, match="random generator"):
        jit.capture(lambda: layer(w).sum())()


def test_a_hand_written_update_is_refused(data):
    _, X, Y = data
    model, _, _ = training_step("float32")

    def f(Xb, Yb):
        loss = F.cross_entropy(model(Xb), Yb)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        for p in model.parameters():
            p.data += -0.1 * p.grad  # raw array arithmetic: invisible to a replay
        return loss
    with pytest.raises(CaptureError, match="in place"):
        jit.capture(f)(X[:32], Y[:32])


def test_control_flow_on_outside_state_is_refused_at_the_second_call():
    w = Tensor(np.ones(3), requires_grad=True)
    calls = []

    def f(x):
        calls.append(1)
        return (x * w).tanh() if len(calls) % 2 else (x * w).exp()
    with pytest.raises(CaptureError, match="different things on its first two calls"):
        capture_twice(f, np.ones(3))


def test_an_array_computed_from_the_data_outside_the_ops_is_refused():
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(CaptureError, match="value changed between the first two calls"):
        replayed = jit.capture(lambda x: w * Tensor(x * 2.0))
        replayed(np.arange(3.0))
        replayed(np.arange(3.0) + 1)


def test_retain_grad_and_grad_assignment_inside_are_refused():
    w = Tensor(np.ones(3), requires_grad=True)

    def keeps(x):
        h = x * w
        h.retain_grad()
        h.sum().backward()
    with pytest.raises(CaptureError, match="retain_grad"):
        jit.capture(keeps)(np.ones(3))

    def assigns(x):
        w.grad = np.zeros(3)
    with pytest.raises(CaptureError, match="assigns an array to .grad"):
        jit.capture(assigns)(np.ones(3))


def test_backward_into_a_graph_from_before_the_call_is_refused():
    w = Tensor(np.ones(3), requires_grad=True)
    h = w * 2  # recorded before the function runs: a replay could not redo it
    with pytest.raises(CaptureError, match="computed before the captured function"):
        jit.capture(lambda x: (h * x).sum().backward())(Tensor(np.ones(3)))


def test_a_second_backward_through_a_replayed_steps_loss_is_refused():
    """The loss a replayed step returns had its backward inside the step: another one raises,
    as eager mode's second backward finds the graph freed."""
    w = Tensor(np.ones(3), requires_grad=True)

    def step(x):
        loss = (w * x).sum()
        loss.backward()
        return loss
    replayed = jit.capture(step)
    for _ in range(3):
        loss = replayed(Tensor(np.ones(3)))
    assert replayed.replayed > 0
    with pytest.raises(CaptureError, match="backward already ran inside the function"):
        loss.backward()


def test_a_changed_model_is_refused_until_reset(data):
    _, X, Y = data
    model, _, step = training_step("float32")
    replayed = capture_twice(step, X[:32], Y[:32])
    weight = model.layers[-1].weight
    weight.data = weight.data.clone()  # a new array: the capture's is stale
    with pytest.raises(CaptureError, match="replaced or changed"):
        replayed(X[:32], Y[:32])
    replayed.reset()
    for _ in range(3):
        replayed(X[:32], Y[:32])
    model.to(dtype="float64")
    with pytest.raises(CaptureError, match="replaced or changed"):
        replayed(X[:32], Y[:32])
    replayed.reset()
    for _ in range(3):
        replayed(X[:32], Y[:32])
    running_mean = model.layers[3].running_mean  # a buffer: forward updates it in place
    running_mean.data = running_mean.data.clone()
    with pytest.raises(CaptureError, match="replaced or changed"):
        replayed(X[:32], Y[:32])


def test_a_capture_inside_a_capture_is_recorded_by_the_outer_one(data):
    """The inner captured function runs inline while the outer one records: its ops are
    part of the outer replay, and the eager hooks are off again afterwards."""
    rng, X, Y = data
    _, _, eager_step = training_step("float64")
    _, _, step = training_step("float64")
    inner = jit.capture(step)
    outer = jit.capture(lambda Xb, Yb: inner(Xb, Yb) * 2.0)
    for i in range(4):
        ix = rng.integers(0, len(X), 32)
        same_bits(eager_step(X[ix], Y[ix]) * 2.0, outer(X[ix], Y[ix]), f"loss at call {i}")
    assert (outer.replayed, inner.replayed, inner.eager) == (2, 0, 0)
    assert watch.watcher is None


def test_makemore_style_loss_by_indexing_is_replayed_and_checked():
    """Part 4's loss, -logprobs[range(n), Yb].mean(): a constant row index made inside, and
    the targets from the arguments, range-checked before every replay."""
    rng = np.random.default_rng(5)
    W = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    W_eager = Tensor(W.data, requires_grad=True)

    def step(W):
        def f(x, Yb):
            logits = x @ W
            logprobs = logits - logits.exp().sum(1, keepdim=True).log()
            loss = -logprobs[range(x.shape[0]), Yb].mean()
            W.grad = None
            loss.backward()
            return loss
        return f
    replayed, eager = jit.capture(step(W)), step(W_eager)
    for i in range(4):
        x, y = rng.standard_normal((6, 5)), rng.integers(0, 4, 6)
        same_bits(replayed(x, y), eager(x, y), f"loss at call {i}")
        same_bits(W.grad, W_eager.grad, f"W.grad at call {i}")
    assert replayed.replayed == 2
    with pytest.raises(IndexError):
        replayed(x, np.array([0, 1, 2, 3, 4, 0]))  # 4 is out of range for 4 classes: eager's error
    y = np.array([0, 1, 2, 3, -1, 0])  # -1 is the last class to NumPy: eager mode runs it, rightly
    same_bits(replayed(x, y), eager(x, y), "loss with a negative index")


def test_decorator_no_grad_and_layer_out():
    """@jit.capture on a def; grad mode is part of the signature; layer.out keeps the
    tensor of the last eager call, as the module docstring says."""
    layer = nn.Linear(3, 2)

    @jit.capture
    def forward(x):
        return layer(x)
    x = np.ones((4, 3), dtype=np.float32)
    first = forward(x)
    forward(x)
    recorded_out = layer.out
    replayed = forward(x)
    same_bits(first, replayed, "output")
    assert layer.out is recorded_out and forward.replayed == 1
    with no_grad():
        forward(x)
    assert forward.eager == 3  # no_grad is another signature
