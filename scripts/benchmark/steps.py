"""One training step of makemore part 5's hierarchical model, written four ways
(engine, jit, torch, numpy; see scripts/bench.py), each from the same initial
weights, and the check that they take the same step."""
import os
from pathlib import Path

import numpy as np

from tinygrad_wave import Tensor, backend, jit, manual_seed
from tinygrad_wave import functional as F
from tinygrad_wave.data import build_dataset, build_vocab, load_words, split_words
from tinygrad_wave.models import PRESETS, build_model
from tinygrad_wave.optim import SGD

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = PRESETS["hier76k"]  # block_size 8, n_embd 24, n_hidden 128, hierarchical
LR = 0.1
EPS, MOMENTUM = 1e-5, 0.1  # BatchNorm1d's defaults, in every implementation
RANDOM_EXAMPLES = 200_000
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- data ----------------------------------------------------------------------------

def load_data(path, random_data, seed):
    """(X, Y, vocab_size, description): contexts (N, block_size) and next-character
    targets (N,), both int64. makemore's training split of names.txt when it exists,
    else random integers."""
    block_size = CONFIG["block_size"]
    if not random_data and path.exists():
        words = load_words(path)
        itos = build_vocab(words)
        X, Y = build_dataset(split_words(words)[0], block_size, itos)
        return (X, Y, len(itos),
                f"names data set {_shown(path)} (makemore's training split, {len(X):,} examples)")
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 27, (RANDOM_EXAMPLES, block_size))
    Y = rng.integers(0, 27, RANDOM_EXAMPLES)
    return X, Y, 27, f"random integer contexts and targets in [0, 27) ({RANDOM_EXAMPLES:,} examples)"


def _shown(path):
    """`path` relative to the repository root when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def initial_weights(vocab_size, seed):
    """A float32 engine model and host copies of its (parameters, buffers), in the
    engine's order: embedding, (weight, gamma, beta) per level, output weight, bias;
    (running_mean, running_var) per level."""
    manual_seed(seed)
    model = build_model(vocab_size, **CONFIG)
    return model, ([p.numpy() for p in model.parameters()], [b.numpy() for b in model.buffers()])


def unpack(params, buffers):
    """emb, [(W, gamma, beta, running_mean, running_var) per level], (W_out, b_out)."""
    emb, *middle, w_out, b_out = params
    trained = [middle[i:i + 3] for i in range(0, len(middle), 3)]
    running = [buffers[i:i + 2] for i in range(0, len(buffers), 2)]
    return emb, [(*t, *r) for t, r in zip(trained, running)], (w_out, b_out)


# --- the four implementations of one training step -------------------------------------
# Each has step(ix) -> loss, sync() (wait for the device), parameters() and buffers()
# (host NumPy copies, in the engine's order).

def _no_mark(phase):
    pass


class EngineStep:
    name = "engine"

    def __init__(self, model, weights, X, Y, device, dtype):
        self.device, self.xp = device, backend.namespace(device)
        self.model = model.to(device, dtype)
        self.optimizer = SGD(self.model.parameters(), lr=LR)
        self.X, self.Y = backend.to_array(X, device=device), backend.to_array(Y, device=device)

    def step(self, ix, mark=_no_mark):
        """`mark(phase)` is called at the end of each phase (used by --profile)."""
        ix = self.xp.asarray(ix)  # host indices to the device (no-op on the CPU)
        Xb = Tensor(self.X[ix], device=self.device)
        Yb = Tensor(self.Y[ix], device=self.device)
        mark("batch")
        logits = self.model(Xb)
        mark("forward")
        loss = F.cross_entropy(logits, Yb)
        mark("loss")
        self.optimizer.zero_grad()
        mark("zero_grad")
        loss.backward()
        mark("backward")
        self.optimizer.step()
        mark("sgd")
        return loss

    def sync(self):
        if self.device == "cuda":
            self.xp.cuda.Device().synchronize()

    def parameters(self):
        return [p.numpy() for p in self.model.parameters()]

    def buffers(self):
        return [b.numpy() for b in self.model.buffers()]


class JitStep(EngineStep):
    """The engine's step as a function of the batch, captured by tinygrad_wave.jit:
    the first two calls run eagerly and are recorded, later ones replay the ops."""
    name = "jit"

    def __init__(self, model, weights, X, Y, device, dtype):
        super().__init__(model, weights, X, Y, device, dtype)
        self.train_step = jit.capture(self.eager_step)

    def eager_step(self, Xb, Yb):
        loss = F.cross_entropy(self.model(Xb), Yb)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def step(self, ix):
        ix = self.xp.asarray(ix)
        return self.train_step(self.X[ix], self.Y[ix])


class TorchStep:
    """The model as makemore part 5 writes it, on plain torch tensors."""
    name = "torch"

    def __init__(self, model, weights, X, Y, device, dtype):
        import torch
        self.torch, self.device = torch, device
        tdtype = getattr(torch, np.dtype(dtype).name)
        params, buffers = weights
        self.params = [torch.tensor(p, dtype=tdtype, device=device, requires_grad=True) for p in params]
        self._buffers = [torch.tensor(b, dtype=tdtype, device=device) for b in buffers]
        self.emb, self.levels, (self.w_out, self.b_out) = unpack(self.params, self._buffers)
        self.X, self.Y = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)

    def step(self, ix):
        torch = self.torch
        ix = torch.from_numpy(ix).to(self.device)
        loss = self.loss(self.X[ix], self.Y[ix])
        for p in self.params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= LR * p.grad
        return loss

    def loss(self, Xb, Yb):
        """Forward and cross-entropy, updating the running statistics on the way."""
        torch = self.torch
        x = self.emb[Xb]  # (B, 8, n_embd)
        for W, gamma, beta, running_mean, running_var in self.levels:
            B, T, C = x.shape
            x = x.view(B, T // 2, C * 2)  # FlattenConsecutive(2)
            if T == 2:
                x = x.squeeze(1)
            x = x @ W
            dims = (0, 1) if x.ndim == 3 else 0
            mean = x.mean(dims, keepdim=True)
            var = x.var(dims, keepdim=True)  # unbiased, as makemore
            xhat = (x - mean) / torch.sqrt(var + EPS)
            x = torch.tanh(gamma * xhat + beta)
            with torch.no_grad():
                running_mean.mul_(1 - MOMENTUM).add_(mean.reshape(-1), alpha=MOMENTUM)
                running_var.mul_(1 - MOMENTUM).add_(var.reshape(-1), alpha=MOMENTUM)
        return torch.nn.functional.cross_entropy(x @ self.w_out + self.b_out, Yb)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def parameters(self):
        return [p.detach().cpu().numpy().copy() for p in self.params]

    def buffers(self):
        return [b.cpu().numpy().copy() for b in self._buffers]


class NumpyStep:
    """Forward and backward written out in NumPy, every activation a 2-D array:
    FlattenConsecutive(2) of a (rows, C) array is a reshape to (rows / 2, 2 C),
    (B, T, C) @ W is one (B T, C) @ W GEMM, and batch norm over dims (0, 1) of
    (B, T, C) is a reduction over the rows."""
    name = "numpy"

    def __init__(self, model, weights, X, Y, device, dtype):
        params, buffers = weights
        self.params = [p.astype(dtype) for p in params]
        self._buffers = [b.astype(dtype) for b in buffers]
        self.emb, self.levels, (self.w_out, self.b_out) = unpack(self.params, self._buffers)
        self.X, self.Y, self.dtype = X, Y, dtype
        self.classes = np.arange(self.emb.shape[0])

    def step(self, ix):
        Xb, Yb = self.X[ix], self.Y[ix]
        B = len(ix)
        # forward: embedding gather, then per level flatten -> GEMM -> batch norm -> tanh
        act = self.emb[Xb.reshape(-1)]  # (B * 8, n_embd)
        saved = []
        for W, gamma, beta, running_mean, running_var in self.levels:
            x = act.reshape(-1, 2 * act.shape[1])  # FlattenConsecutive(2)
            h = x @ W
            n = h.shape[0]
            mean = h.mean(0)
            centered = h - mean
            var = (centered * centered).sum(0) / (n - 1)
            inv_std = (var + EPS) ** -0.5
            xhat = centered * inv_std
            act = np.tanh(gamma * xhat + beta)
            running_mean *= 1 - MOMENTUM
            running_mean += MOMENTUM * mean
            running_var *= 1 - MOMENTUM
            running_var += MOMENTUM * var
            saved.append((x, xhat, inv_std, act))
        logits = act @ self.w_out + self.b_out  # act is (B, n_hidden) now
        shifted = logits - logits.max(1, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(1, keepdims=True)
        rows = np.arange(B)
        loss = -(shifted[rows, Yb] - np.log(total[:, 0])).mean()

        # backward
        dlogits = exp / total  # cross-entropy: (softmax - onehot) / B
        dlogits[rows, Yb] -= 1
        dlogits /= B
        grads = [act.T @ dlogits, dlogits.sum(0)]  # output weight and bias
        dact = dlogits @ self.w_out.T
        for (W, gamma, *_), (x, xhat, inv_std, y) in zip(reversed(self.levels), reversed(saved)):
            dy = dact * (1 - y * y)  # tanh: 1 - y^2
            n = dy.shape[0]
            dbeta = dy.sum(0)
            dgamma = (dy * xhat).sum(0)
            dh = (gamma * inv_std) * (dy - dbeta / n - xhat * (dgamma / (n - 1)))  # batch norm, closed form
            grads[:0] = [x.T @ dh, dgamma, dbeta]
            dact = (dh @ W.T).reshape(-1, W.shape[0] // 2)  # undo the flatten
        onehot = (Xb.reshape(-1)[:, None] == self.classes).astype(self.dtype)
        grads.insert(0, onehot.T @ dact)  # embedding: scatter-add as a one-hot matmul
        for p, g in zip(self.params, grads):
            p -= LR * g
        return loss

    def sync(self):
        pass

    def parameters(self):
        return [p.copy() for p in self.params]

    def buffers(self):
        return [b.copy() for b in self._buffers]


class CompiledStep(TorchStep):
    """TorchStep with its forward and loss compiled by torch.compile (and so the backward
    AOTAutograd derives from them); zero_grad and the SGD update stay eager."""
    name = "compiled"

    def __init__(self, model, weights, X, Y, device, dtype):
        super().__init__(model, weights, X, Y, device, dtype)
        # every instance (per dtype, batch size, thread count) compiles its own code: more than
        # torch's default of 8 would quietly fall back to eager mode
        self.torch._dynamo.config.cache_size_limit = 256
        self.loss = self.torch.compile(self.loss)


def compile_problem(device):
    """None where torch.compile compiles a small forward and backward on `device`, else why not."""
    import torch
    try:
        w = torch.ones(4, 4, dtype=torch.float64, device=device, requires_grad=True)
        torch.compile(lambda x: torch.tanh(x @ w).sum())(torch.ones(2, 4, dtype=torch.float64, device=device)).backward()
    except Exception as e:  # no C++ compiler, no Triton for this GPU, ...: whatever stops it, say it
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def implementations(device, compiled=False):
    """The step classes to time: numpy only on the CPU, torch.compile's only when asked."""
    return ((EngineStep, JitStep, TorchStep) + ((CompiledStep,) if compiled else ())
            + (() if device == "cuda" else (NumpyStep,)))


def build(device, dtype, data, seed, only=None, compiled=False):
    """Fresh instances of every implementation (or the one named `only`), all from
    the same initial weights."""
    X, Y, vocab = data[:3]
    impls = []
    for cls in implementations(device, compiled):
        if only not in (None, cls.name):
            continue
        model, weights = initial_weights(vocab, seed)
        impls.append(cls(model, weights, X, Y, device, np.dtype(dtype)))
    return impls


# --- correctness ---------------------------------------------------------------------

def check(device, data, seed, compiled=False):
    """One float64 step of each implementation from the same weights on the same
    batch: the same loss, the same weight update, the same running statistics."""
    impls = build(device, "float64", data, seed, compiled=compiled)
    ix = np.random.default_rng(seed).integers(0, len(data[0]), 32)
    before = impls[0].parameters()
    results = []
    for impl in impls:
        loss = float(impl.step(ix).item())
        results.append((impl.name, loss, [a - b for a, b in zip(impl.parameters(), before)], impl.buffers()))
    ref_name, ref_loss, ref_update, ref_buffers = results[0]
    worst = 0.0
    for name, loss, update, buffers in results[1:]:
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-10, err_msg=f"loss: {name} vs {ref_name}")
        for i, (a, b) in enumerate(zip(update + buffers, ref_update + ref_buffers)):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12,
                                       err_msg=f"{name} vs {ref_name}: array {i} of updates+buffers")
            worst = max(worst, float(np.max(np.abs(a - b))))
    assert all(np.any(u != 0) for u in ref_update), "a parameter received no update"
    check_replay(device, data, seed)
    return ref_loss, worst


def check_replay(device, data, seed):
    """Three more steps of engine and jit (the third a replay): the same bits."""
    engine, replayed = build(device, "float64", data, seed, only="engine") + build(device, "float64", data, seed,
                                                                                     only="jit")
    rng = np.random.default_rng(seed)
    for _ in range(3):
        ix = rng.integers(0, len(data[0]), 32)
        engine.step(ix), replayed.step(ix)
    assert replayed.train_step.replayed == 1, "the jit column did not replay"
    for i, (a, b) in enumerate(zip(engine.parameters() + engine.buffers(), replayed.parameters() + replayed.buffers())):
        assert a.tobytes() == b.tobytes(), f"jit vs engine: array {i} of parameters+buffers differs after a replay"
