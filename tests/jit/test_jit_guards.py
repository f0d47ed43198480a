"""jit.capture's guard discipline: Python-side state a captured step reads or writes.

Each case runs the same step eagerly and captured, from the same start, and either
the two agree bit for bit at every call or the capture raises CaptureError naming
what to change. Never a silently different result.
"""
import numpy as np
import pytest

from tinygrad_wave import Generator, Tensor, jit, manual_seed, no_grad, randn
from tinygrad_wave import makemore_layers as nn
from tinygrad_wave import functional as F
from tinygrad_wave.jit import CaptureError
from tinygrad_wave.optim import SGD


def same_bits(a, b, what):
    a, b = (x.numpy() if isinstance(x, Tensor) else x for x in (a, b))
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert a.tobytes() == b.tobytes(), what


def small_model():
    """Embedding, Linear, BatchNorm1d, Tanh, Linear: every kind of Python state a step touches."""
    manual_seed(11)
    model = nn.Sequential(nn.Embedding(10, 4), nn.FlattenConsecutive(3), nn.Linear(12, 8, bias=False),
                          nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 10))
    return model, SGD(model.parameters(), lr=0.1)


def sgd_step(model, opt, X, Y):
    """Forward, loss, zero_grad, backward and the update: the step each case changes one thing in."""
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def batch(rng, n=16):
    return rng.integers(0, 10, (n, 3)), rng.integers(0, 10, n)


def pair(make_step):
    """The same step twice from the same start: one to run eagerly, one captured."""
    eager_parts, captured_parts = small_model(), small_model()
    return (make_step(*eager_parts), eager_parts), (jit.capture(make_step(*captured_parts)), captured_parts)


def refused(make_step, match):
    """The captured step raises CaptureError matching `match` (at its first or second call)."""
    _, (replayed, _) = pair(make_step)
    X, Y = batch(np.random.default_rng(1))
    with pytest.raises(CaptureError, match=match):
        replayed(X, Y)
        replayed(X, Y)


def same_models(a, b, what):
    a_tensors, b_tensors = list(a.named_tensors()), list(b.named_tensors())
    assert len(a_tensors) == len(b_tensors), what
    for (name, x, _), (_, y, _) in zip(a_tensors, b_tensors):
        same_bits(x, y, f"{what}: {name}")


# --- the five cases --------------------------------------------------------------------

def lr_from_argument(model, opt):
    def step(X, Y, lr):
        opt.lr = lr
        return sgd_step(model, opt, X, Y)
    return step


@pytest.mark.parametrize("rates, replays", [([0.1, 0.1, 0.01, 0.01, 0.1, 0.01, 0.1, 0.01], 4),
                                            ([0.1 / (i + 1) for i in range(5)], 0)],
                         ids=["schedule", "new-every-call"])
def test_a_learning_rate_set_inside_the_step_from_an_argument_is_replayed(rates, replays):
    """opt.lr = lr inside, on a schedule A, A, B, B, A, B: each call uses its own lr. A rate new
    at every call is a new signature every time: always eager, never wrong."""
    (eager, (eager_model, _)), (replayed, (model, opt)) = pair(lr_from_argument)
    rng = np.random.default_rng(0)
    for i, lr in enumerate(rates):
        X, Y = batch(rng)
        same_bits(eager(X, Y, lr), replayed(X, Y, lr), f"loss at call {i}")
        assert opt.lr == lr
    same_models(eager_model, model, "after the schedule")
    assert replayed.replayed == replays


@pytest.mark.parametrize("write", ["np.clip out=", "p.data[...] -=", "p.grad[...] +=", "no_grad p -="])
def test_numpy_and_in_place_writes_inside_the_step_are_refused(write):
    def make_step(model, opt):
        def step(X, Y):
            loss = F.cross_entropy(model(X), Y)
            opt.zero_grad()
            loss.backward()
            for p in model.parameters():
                if write == "np.clip out=":
                    np.clip(p.grad.numpy(), -0.01, 0.01, out=p.grad.numpy())
                elif write == "p.data[...] -=":
                    p.data[...] -= 0.1 * p.grad
                elif write == "p.grad[...] +=":
                    p.grad[...] += 1e-3 * p.data
                else:
                    with no_grad():
                        p -= 0.1 * p.grad
            return loss
        return step
    refused(make_step, r"in place|\.numpy\(\)|\.data")


def test_reading_loss_data_inside_the_step_is_refused():
    """A loss log kept inside would stop growing once replays start: refused at the first call."""
    log = []

    def make_step(model, opt):
        def step(X, Y):
            loss = F.cross_entropy(model(X), Y)
            log.append(loss.data)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step
    refused(make_step, r"loss\.data|\.data inside")


def test_a_parameter_added_to_the_optimiser_after_capture_is_cleared_and_updated_as_eager():
    """zero_grad and step are the optimiser's own calls at every replay: a parameter appended
    later, with a stale gradient, is cleared by zero_grad as in eager mode."""
    def make_step(model, opt):
        def step(X, Y):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), Y)
            loss.backward()
            opt.step()
            return loss
        return step
    (eager, (_, eager_opt)), (replayed, (_, opt)) = pair(make_step)
    rng = np.random.default_rng(3)
    extras = []
    for i in range(6):
        if i == 3:
            for o in (eager_opt, opt):
                extra = Tensor(np.ones(3), requires_grad=True)
                extra.grad = Tensor(np.full(3, 2.0))  # stale: eager's zero_grad forgets it
                o.params.append(extra)
                o.velocities.append(None)
                extras.append(extra)
        X, Y = batch(rng)
        same_bits(eager(X, Y), replayed(X, Y), f"loss at call {i}")
    same_bits(extras[0], extras[1], "the appended parameter")
    assert extras[1].grad is None and replayed.replayed == 4


def test_the_same_array_as_two_arguments_is_another_signature():
    """Recorded with one array passed twice, the step must still read two arrays when
    given two: aliasing between the arguments is part of the signature."""
    w = Tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
    w_eager = Tensor(w.data, requires_grad=True)

    def make_step(w):
        def step(a, b):
            w.grad = None
            loss = ((a @ w).tanh() * (b @ w)).sum()
            loss.backward()
            return loss
        return step
    replayed, eager = jit.capture(make_step(w)), make_step(w_eager)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3))
    for i in range(3):
        same_bits(eager(x, x), replayed(x, x), f"aliased call {i}")
    for i in range(4):
        a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
        same_bits(eager(a, b), replayed(a, b), f"two arrays, call {i}")
        same_bits(w.grad, w_eager.grad, f"w.grad, call {i}")
    assert replayed.replayed == 1 + 2


# --- the rest of the guard discipline ----------------------------------------------------

def test_a_module_attribute_set_inside_from_an_argument_is_replayed():
    def make_step(model, opt):
        def step(X, Y, momentum):
            model.layers[3].momentum = momentum  # the batch norm's running-statistics rate
            return sgd_step(model, opt, X, Y)
        return step
    (eager, (eager_model, _)), (replayed, (model, _)) = pair(make_step)
    rng = np.random.default_rng(5)
    for i, m in enumerate([0.1, 0.1, 0.5, 0.5, 0.1, 0.5]):
        X, Y = batch(rng)
        same_bits(eager(X, Y, m), replayed(X, Y, m), f"loss at call {i}")
    same_models(eager_model, model, "after the calls")
    assert replayed.replayed == 2


def test_an_attribute_set_inside_to_something_a_replay_cannot_repeat_is_refused():
    def make_step(model, opt):
        def step(X, Y):
            loss = F.cross_entropy(model(X), Y)
            opt.last_loss = loss  # a tensor of this call: a replay would leave the eager one there
            return loss
        return step
    refused(make_step, r"SGD\.last_loss")


def test_eval_and_train_inside_the_step_are_replayed():
    """An evaluation inside the step (eval, forward, train): the mode flags are set as eager sets them."""
    def make_step(model, opt):
        def step(X, Y):
            model.eval()
            with no_grad():
                val = F.cross_entropy(model(X), Y)
            model.train()
            return sgd_step(model, opt, X, Y), val
        return step
    (eager, (eager_model, _)), (replayed, (model, _)) = pair(make_step)
    rng = np.random.default_rng(7)
    for i in range(5):
        X, Y = batch(rng)
        for a, b in zip(eager(X, Y), replayed(X, Y)):
            same_bits(a, b, f"call {i}")
    same_models(eager_model, model, "after the calls")
    assert replayed.replayed == 3 and model.training and model.layers[3].training


def test_a_step_captured_in_training_mode_is_refused_in_eval_mode():
    def make_step(model, opt):
        return lambda X, Y: F.cross_entropy(model(X), Y)
    _, (replayed, (model, _)) = pair(make_step)
    X, Y = batch(np.random.default_rng(8))
    for _ in range(3):
        replayed(X, Y)
    model.eval()
    with pytest.raises(CaptureError, match=r"BatchNorm1d\.training"):
        replayed(X, Y)
    model.train()
    replayed(X, Y)
    assert replayed.replayed == 2


def test_requires_grad_set_inside_is_refused_and_changed_outside_is_caught():
    def make_step(model, opt, freeze=False):
        def step(X, Y):
            if freeze:
                model.layers[0].weight.requires_grad = False
            return sgd_step(model, opt, X, Y)
        return step
    model, opt = small_model()
    X, Y = batch(np.random.default_rng(9))
    with pytest.raises(CaptureError, match="requires_grad"):
        jit.capture(make_step(model, opt, freeze=True))(X, Y)
    model, opt = small_model()
    replayed = jit.capture(make_step(model, opt))
    for _ in range(3):
        replayed(X, Y)
    model.layers[0].weight.requires_grad = False
    with pytest.raises(CaptureError, match="requires_grad"):
        replayed(X, Y)


def test_the_optimisers_parameter_list_replaced_between_calls_is_followed():
    """step() and zero_grad() run as the optimiser's own calls: a new list (a layer frozen by
    leaving it out) is what they read at the next replay, as in eager mode."""
    def make_step(model, opt):
        def step(X, Y):
            return sgd_step(model, opt, X, Y)
        return step
    (eager, (eager_model, eager_opt)), (replayed, (model, opt)) = pair(make_step)
    rng = np.random.default_rng(10)
    for i in range(6):
        if i == 3:
            eager_opt.params, opt.params = eager_opt.params[1:], opt.params[1:]
            eager_opt.velocities, opt.velocities = eager_opt.velocities[1:], opt.velocities[1:]
        X, Y = batch(rng)
        same_bits(eager(X, Y), replayed(X, Y), f"loss at call {i}")
    same_models(eager_model, model, "after the calls")
    assert replayed.replayed == 4


# --- randomness, and the capture's own arguments -------------------------------------------

def test_dropout_inside_is_refused_and_in_eval_mode_replayed():
    layer, w = nn.Dropout(0.5), Tensor(np.ones((4, 4)), requires_grad=True)
    with pytest.raises(CaptureError, match="host randomness"):
        jit.capture(lambda: layer(w).sum())()
    layer.eval()
    replayed = jit.capture(lambda: layer(w).sum())
    for _ in range(3):
        same_bits(replayed(), Tensor(np.float64(16.0)), "dropout in eval mode is the identity")
    assert replayed.replayed == 1
    layer.train()  # a replay would skip the draws: refused
    with pytest.raises(CaptureError, match=r"Dropout\.training"):
        replayed()


def test_draws_from_a_private_generator_inside_are_refused():
    """A generator of its own leaves the global state as it was: the draw itself is what is seen."""
    generator = Generator().manual_seed(0)

    def step(x):
        noise = randn(3, generator=generator, dtype="float64")
        return (x * noise).sum()
    with pytest.raises(CaptureError, match="host randomness"):
        jit.capture(step)(Tensor(np.ones(3)))


@pytest.mark.parametrize("cache_size", [-1, 0, "4", 2.5, True, None])
def test_a_bad_cache_size_is_refused_at_capture(cache_size):
    with pytest.raises((TypeError, ValueError), match="cache_size"):
        jit.capture(lambda x: x, cache_size=cache_size)
    with pytest.raises((TypeError, ValueError), match="cache_size"):
        jit.capture(cache_size=cache_size)


def test_a_learners_op_taking_indices_from_the_arguments_is_refused_by_name():
    """An op of one's own (lesson 4) whose option comes from the arguments declares no replay
    check: the replay cannot tell whether new indices are ones its forward accepts."""
    from tinygrad_wave.autograd import Function

    class Pick(Function):
        saves_inputs = False

        def forward(self, x, ix):
            self.shape, self.ix = x.shape, ix
            return x[ix]

        def backward(self, g):
            dx = self.xp.zeros(self.shape, g.dtype)
            self.xp.add.at(dx, self.ix, g)
            return (dx,)
    w = Tensor(np.ones((5, 2)), requires_grad=True)
    with pytest.raises(CaptureError, match="Pick's option 'ix'.*replay_check"):
        capture = jit.capture(lambda ix: Pick.apply(w, ix=ix).sum())
        capture(np.array([0, 4]))
        capture(np.array([1, 2]))


# --- what a replay cannot see (issue 24's cases 1 to 4, issue 30's optimiser subclass) ------------

def test_a_captured_forward_replays_its_backward_as_torch_compile_model_does():
    """jit.capture(model) with the loss and backward outside: a replay returns a tensor whose
    node replays the recorded backward, so the parameters get eager's gradients bit for bit
    (also through a term of the loss outside the capture)."""
    (eager_model, eager_opt), (model, opt) = small_model(), small_model()
    forward = jit.capture(lambda X: model(X))
    rng = np.random.default_rng(2)
    for call in range(6):
        X, Y = batch(rng)
        losses = []
        for m, o, f in ((eager_model, eager_opt, eager_model), (model, opt, forward)):
            loss = F.cross_entropy(f(X), Y) + 0.01 * (m.layers[2].weight ** 2).sum()
            o.zero_grad()
            loss.backward()
            o.step()
            losses.append(loss)
        same_bits(*losses, f"loss at call {call}")
        same_models(eager_model, model, f"after call {call}")
    assert forward.replayed == 4
    with no_grad():  # without a graph, a captured forward replays too
        same_bits(forward(X), model(X), "a captured forward under no_grad")


def test_a_captured_forward_hands_gradients_on_into_an_arguments_graph():
    """An argument made by ops outside the capture (h = x @ w): the replayed backward hands its
    gradient on to h's graph, so w gets eager's gradient, bit for bit, and so does v inside."""
    rng = np.random.default_rng(4)
    w, v = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    (w, v), (w_eager, v_eager) = [[Tensor(a.copy(), requires_grad=True) for a in (w, v)] for _ in range(2)]
    forward = jit.capture(lambda h: (h @ v).tanh())
    for call in range(4):
        x = rng.standard_normal((5, 3))
        for p, q, f in ((w, v, forward), (w_eager, v_eager, lambda h: (h @ v_eager).tanh())):
            p.grad = q.grad = None
            f(Tensor(x) @ p).sum().backward()
        same_bits(w.grad, w_eager.grad, f"w.grad at call {call}")
        same_bits(v.grad, v_eager.grad, f"v.grad at call {call}")
    assert forward.replayed == 2


def test_a_replayed_forward_refuses_a_backward_it_could_not_give_right():
    model, opt = small_model()
    forward = jit.capture(lambda X: model(X))
    X, Y = batch(np.random.default_rng(3))
    for _ in range(3):
        logits = forward(X)
    forward(X)  # another call: the saved arrays are now its own
    with pytest.raises(CaptureError, match="called again"):
        F.cross_entropy(logits, Y).backward()
    loss = F.cross_entropy(forward(X), Y)
    with no_grad():
        model.layers[2].weight -= 0.1  # what the replayed backward would read changed: as eager refuses
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    loss = F.cross_entropy(forward(X), Y)
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        loss.backward()


def test_an_argument_that_is_a_parameters_array_is_refused_and_a_clone_replayed():
    """anchor = W.detach() shares W's array: the recording would take W for the argument."""
    def make_step(model, opt):
        W = model.layers[2].weight

        def step(X, Y, anchor):
            loss = F.cross_entropy(model(X), Y) + 0.1 * ((W - anchor) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step
    (eager, (eager_model, _)), (replayed, (model, _)) = pair(make_step)
    X, Y = batch(np.random.default_rng(3))
    with pytest.raises(CaptureError, match="argument 2 .* requires grad"):
        replayed(X, Y, model.layers[2].weight.detach())
    replayed.reset()
    for i in range(4):  # the penalty pulls W back to where it was two steps ago
        anchors = [m.layers[2].weight.detach().clone() * (1 + i % 2) for m in (eager_model, model)]
        same_bits(eager(X, Y, anchors[0]), replayed(X, Y, anchors[1]), f"loss at call {i}")
    same_models(eager_model, model, "after four calls")
    assert replayed.replayed == 2


def test_a_0d_array_argument_read_in_python_is_keyed_by_its_value():
    """opt.lr = float(lr) from a 0-d NumPy array: each value is a signature of its own."""
    def make_step(model, opt):
        def step(X, Y, lr):
            opt.lr = float(lr)
            return sgd_step(model, opt, X, Y)
        return step
    (eager, (eager_model, _)), (replayed, (model, opt)) = pair(make_step)
    rng = np.random.default_rng(4)
    for i, lr in enumerate([0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.1]):
        X, Y = batch(rng)
        same_bits(eager(X, Y, np.array(lr)), replayed(X, Y, np.array(lr)), f"loss at call {i}")
        assert opt.lr == lr
    same_models(eager_model, model, "after the schedule")
    assert replayed.replayed == 3


@pytest.mark.parametrize("draw", ["random.random()", "np.random.rand()"])
def test_a_branch_on_the_global_random_state_is_refused(draw):
    import random
    coin = {"random.random()": random.random, "np.random.rand()": np.random.rand}[draw]

    def make_step(model, opt):
        def step(X, Y):
            loss = F.cross_entropy(model(X), Y)
            if coin() < 0.5:
                loss = loss * 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step
    refused(make_step, "Python's `random` or NumPy's global")


def test_an_optimiser_subclass_that_writes_the_weights_behind_the_seam_is_refused():
    """A step() without @watch.one_call is not recorded: replays would leave the weights alone."""
    class HandSGD(SGD):
        def step(self):
            for p in self.params:
                p._data -= self.lr * p.grad._data

    model, _ = small_model()
    opt = HandSGD(model.parameters(), lr=0.1)
    X, Y = batch(np.random.default_rng(5))
    with pytest.raises(CaptureError, match="without @watch.one_call"):
        jit.capture(lambda X, Y: sgd_step(model, opt, X, Y))(X, Y)


@pytest.mark.parametrize("keep", ["losses.append(loss)", "history[step] = loss"])
def test_a_tensor_kept_in_a_list_or_dict_inside_the_step_is_refused(keep):
    """A log kept inside would stop growing once replays start (2 entries after 6 calls)."""
    losses, history = [], {}

    def make_step(model, opt):
        def step(X, Y):
            loss = sgd_step(model, opt, X, Y)
            if keep == "losses.append(loss)":
                losses.append(loss)
            else:
                history[len(history)] = loss
            return loss
        return step
    refused(make_step, f"keeps a tensor it computed in a {'list' if 'append' in keep else 'dict'}")


def test_in_place_changes_of_tensors_the_step_made_or_was_given_are_replayed():
    """makemore's MLP writes its start token into rolled ids (`idx[:, 0] = 10`); here too `+=` on
    ids the step made, and a write into the caller's own tensor: a replay repeats each at its
    place among the ops, so the losses, the weights and the caller's tensor are eager's."""
    def make_step(model, opt):
        def step(X, Y, marks):
            ids = X.roll(1, 1)
            ids[:, 0] = 9
            ids += 0  # (an integer tensor: nothing to record)
            marks[:, 1:] = ids[:, :2]  # into the caller's tensor
            return sgd_step(model, opt, ids, Y)
        return step
    (eager, (eager_model, _)), (replayed, (model, _)) = pair(make_step)
    rng = np.random.default_rng(0)
    for i in range(5):
        X, Y = (Tensor(a) for a in batch(rng))
        marks, eager_marks = Tensor(np.zeros((16, 3), dtype=np.int64)), Tensor(np.zeros((16, 3), dtype=np.int64))
        same_bits(eager(X, Y, eager_marks), replayed(X, Y, marks), f"loss at call {i}")
        same_bits(eager_marks, marks, f"the caller's tensor at call {i}")
    assert replayed.replayed == 3
    same_models(eager_model, model, "after five calls")


@pytest.mark.parametrize("write", ["a tensor made by zeros()", "at an index array"])
def test_in_place_changes_a_replay_could_not_repeat_are_refused(write):
    """zeros() inside the step is made once, at capture: a replay would write into that one array
    and read what the last call left. An index array is refused too."""
    def make_step(model, opt):
        def step(X, Y):
            if write == "a tensor made by zeros()":
                ids = Tensor(np.zeros(X.shape, dtype=np.int64))
                ids[:, 1:] = X[:, 1:]
            else:
                ids = Tensor(X) * 1
                ids[np.array([0, 2])] = 0
            return sgd_step(model, opt, ids, Y)
        return step
    refused(make_step, "in place")
