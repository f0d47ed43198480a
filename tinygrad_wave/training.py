"""A training run of makemore part 5, as a value that can stop and resume.

A Run holds everything the next step depends on -- the model (parameters and
batch-norm buffers), the step counter, the random generator's state and the
losses so far -- and saves all of it to one .npz, so that a run stopped at
step k and resumed gives the same losses as one that never stopped.
"""
import signal
import threading
import time
from contextlib import contextmanager

from . import backend
from . import functional as F
from .autograd import no_grad
from .models import PRESETS, build_model
from .optim import SGD
from .tensor import Tensor

DEFAULTS = dict(model="hier76k", **PRESETS["hier76k"], steps=200_000, batch_size=32, lr=0.1,
                lr_decay_step=150_000, seed=42, device="cpu", dtype="float32")
LR_DECAY = 0.1  # lr 0.1 becomes 0.01 at lr_decay_step, as in the reference


def learning_rate(config, step):
    return config["lr"] if step < config["lr_decay_step"] else config["lr"] * LR_DECAY


class Run:
    """config: the DEFAULTS keys (plus, from train.py, the data file and its sha256);
    itos: the vocabulary, '.' first."""

    def __init__(self, config, itos):
        self.config, self.itos = dict(config), itos
        backend.manual_seed(config["seed"])
        self.model = build_model(len(itos), config["block_size"], config["n_embd"],
                                 config["n_hidden"], config["hierarchical"])
        self.model.to(config["device"], config["dtype"])
        self.optimizer = SGD(self.model.parameters(), config["lr"])
        self.step = 0
        self.losses = []  # one float per step
        self.evals = []   # {"step", "split", "loss"} records
        self.seconds = 0.0  # time spent in train(), over every resume
        self.stop_requested = False
        self.interrupted_mid_step = False  # a forced stop left the state half updated

    # --- saving and loading -----------------------------------------------------------

    def save(self, path):
        arrays = {f"model.{name}": a for name, a in self.model.state_dict().items()}
        arrays["losses"] = backend.to_array(self.losses, dtype="float64")
        meta = dict(config=self.config, itos=self.itos, step=self.step, evals=self.evals,
                    seconds=self.seconds, rng_state=backend.rng_state())
        backend.save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path, device=None):
        """A saved run, on its own device or on `device`."""
        arrays, meta = backend.load_arrays(path)
        config = meta["config"]
        if device is not None:
            config["device"] = device
        run = cls(config, meta["itos"])
        run.model.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
        run.step, run.evals, run.seconds = meta["step"], meta["evals"], meta["seconds"]
        run.losses = arrays["losses"].tolist()
        backend.set_rng_state(meta["rng_state"])
        return run

    # --- training -------------------------------------------------------------------

    def train(self, X, Y, steps, on_step=None, log_every=1000):
        """Take SGD steps on batches drawn from (X, Y) until self.step == steps.
        `on_step(run)`, if given, is called after every step (and makes every
        step read its loss back from the device).

        Ctrl-C during the loop only sets a flag: the step in progress finishes,
        so the parameters are never half updated, and train() returns early
        with self.stop_requested set. A second Ctrl-C interrupts at once; if
        it lands inside a step, self.interrupted_mid_step says not to save."""
        device, batch_size = self.config["device"], self.config["batch_size"]
        X, Y = backend.to_array(X, device=device), backend.to_array(Y, device=device)
        pending = []  # losses still on the device: read back in one transfer per log_every steps

        def request_stop(signum, frame):
            self.stop_requested = True
            signal.signal(signal.SIGINT, previous)

        in_main_thread = threading.current_thread() is threading.main_thread()  # signals need it
        previous = signal.signal(signal.SIGINT, request_stop) if in_main_thread else None
        self.stop_requested = False
        started = time.perf_counter()
        in_step = False
        try:
            while self.step < steps and not self.stop_requested:
                in_step = True
                ix = backend.randint(X.shape[0], batch_size, device)
                loss = F.cross_entropy(self.model(X[ix]), Y[ix])
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.lr = learning_rate(self.config, self.step)
                self.optimizer.step()
                self.step += 1
                pending.append(loss.data)
                in_step = False
                if len(pending) == log_every or on_step is not None:
                    self._flush(pending)
                if on_step is not None:
                    on_step(self)
        except KeyboardInterrupt:
            self.interrupted_mid_step = in_step
            raise
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)
            self._flush(pending)
            self.seconds += time.perf_counter() - started
        return self

    def _flush(self, pending):
        if pending:
            xp = backend.namespace(self.config["device"])
            self.losses.extend(backend.to_host(xp.stack(pending)).astype("float64").tolist())
            pending.clear()

    # --- evaluation and sampling -------------------------------------------------------

    @contextmanager
    def _eval_mode(self):
        """Batch norm on its running statistics, no graph; then back to training."""
        self.model.eval()
        try:
            with no_grad():
                yield
        finally:
            self.model.train()

    def evaluate(self, X, Y, chunk=32768):
        """Mean cross-entropy over a whole split, in eval mode."""
        total = 0.0
        with self._eval_mode():
            for start in range(0, X.shape[0], chunk):
                x = Tensor(X[start:start + chunk], device=self.config["device"])
                y = Tensor(Y[start:start + chunk], device=self.config["device"])
                total += F.cross_entropy(self.model(x), y).item() * x.shape[0]
        return total / X.shape[0]

    def sample(self, num, seed=None, temperature=1.0, max_length=50):
        """Names drawn one character at a time from the model, in eval mode."""
        generator = backend.generator(self.config["seed"] if seed is None else seed)
        block_size, names = self.config["block_size"], []
        with self._eval_mode():
            for _ in range(num):
                context, name = [0] * block_size, []
                while len(name) < max_length:
                    logits = self.model(Tensor([context], device=self.config["device"]))
                    probs = F.softmax(logits / temperature, dim=1)
                    ix = backend.multinomial(probs.data[0], generator)
                    if ix == 0:
                        break
                    name.append(self.itos[ix])
                    context = context[1:] + [ix]
                names.append("".join(name))
        return names
