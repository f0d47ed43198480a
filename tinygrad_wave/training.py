"""A training run of makemore part 5, as a value that can stop and resume.

A Run holds everything the next step depends on -- the model (parameters and
batch-norm buffers), the optimiser's momentum, the step counter, the random
generator's state and the losses so far -- and saves all of it to one .npz
(checkpoint.py), so that a run stopped at step k and resumed gives the same
losses as one that never stopped.

The part 5 models train on batches of (context, next character) examples from
build_dataset; the WaveNet on batches of whole names laid end to end (pack),
learning from every position at once. Both report the mean loss per character
over the same splits, so their numbers compare directly.

Run reads in the order a job is built up: one step (forward, loss, backward,
SGD update), train (steps on random batches), fit (a training job's cadence:
train to the last step, evaluate and checkpoint every eval_every steps, stop
between two steps when a signal asks), evaluate, sample, and last saving and
loading. A run whose loss or weights stop being finite numbers, or that is
plainly failing, raises Diverged (divergence.py) and is never saved.
"""
import functools
import math
import numbers
import time
from contextlib import contextmanager

from . import backend, jit
from . import functional as F
from .autograd import no_grad
from .checkpoint import read_checkpoint, write_checkpoint
from .data import END, IGNORE, build_dataset, build_sequences, pack
from .divergence import Diverged, check_growth, check_split_loss
from .models import PRESETS, build_model, parameter_count
from .optim import SGD
from .random import Generator, manual_seed, multinomial, randint
from .tensor import Tensor

DEFAULTS = dict(model="hier76k", **PRESETS["hier76k"], wavenet=False, dropout=0.0, steps=200_000,
                batch_size=32, lr=0.1, lr_decay_step=150_000, momentum=0.0, weight_decay=0.0,
                seed=42, device="cpu", dtype="float32", eval_every=10_000)
# Training settings of the presets that differ from DEFAULTS. The WaveNets' batch is 32 whole
# names (~230 characters); they overfit without dropout (in the preset) and train best with
# momentum; their step counts make a run about as long as hier76k's 200,000 steps (docs/RESULTS.md).
PRESET_TRAINING = {
    "wavenet": dict(steps=20_000, lr=0.05, lr_decay_step=15_000, momentum=0.9, eval_every=2_000),
    "wavenet16": dict(steps=11_000, lr=0.05, lr_decay_step=8_250, momentum=0.9, eval_every=2_000),
}
LR_DECAY = 0.1  # lr 0.1 becomes 0.01 at lr_decay_step, as in the reference
MAX_PARAMETERS = 10 ** 8  # 1,300 times the reference model: a bigger config is a typo, refused before allocating


def check_config(config, itos):
    """Raise ValueError, naming the setting, for a config a Run cannot be built from."""
    for key in ("block_size", "n_embd", "n_hidden", "steps", "batch_size", "lr_decay_step"):
        if not (isinstance(config[key], int) and config[key] >= 1):
            raise ValueError(f"{key} must be a positive integer, not {config[key]!r}")
    if not (isinstance(config["lr"], numbers.Real) and math.isfinite(config["lr"]) and config["lr"] > 0):
        raise ValueError(f"lr must be a positive finite number, not {config['lr']!r}")
    if config["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', not {config['dtype']!r}")
    if not (isinstance(config["seed"], int) and not isinstance(config["seed"], bool) and config["seed"] >= 0):
        raise ValueError(f"seed must be an integer >= 0, not {config['seed']!r}")
    if config["batch_size"] < 2 and not config.get("wavenet", False):
        raise ValueError("batch_size must be at least 2 for part 5's models: their batch norm needs two "
                         "examples per channel (the WaveNets have none, and train on one name a step)")
    if config.get("dropout", 0.0) and not config.get("wavenet", False):
        raise ValueError("dropout applies to the WaveNet presets only: part 5's models have no dropout layer")
    if not (isinstance(itos, str) and itos[:1] == END and len(set(itos)) == len(itos) > 1):
        raise ValueError(f"the vocabulary must be {END!r} then distinct characters, not {itos!r}")
    count = parameter_count(len(itos), config["block_size"], config["n_embd"], config["n_hidden"],
                            config["hierarchical"], config.get("wavenet", False))
    if count > MAX_PARAMETERS:
        raise ValueError(f"block_size {config['block_size']}, n_embd {config['n_embd']} and n_hidden "
                         f"{config['n_hidden']} make a model of {count:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} this engine builds")


def learning_rate(config, step):
    """The learning rate of step `step` (counted from 0): lr, then lr * LR_DECAY from lr_decay_step on."""
    return config["lr"] if step < config["lr_decay_step"] else config["lr"] * LR_DECAY


class Run:
    """config: the DEFAULTS keys (plus, from train.py, the data file and its sha256);
    itos: the vocabulary, '.' first."""

    def __init__(self, config, itos):
        check_config(config, itos)
        self.config, self.itos = dict(config), itos
        manual_seed(config["seed"])
        # .get: checkpoints from before the WaveNet lack these keys
        self.whole_names = config.get("wavenet", False)
        self.model = build_model(len(itos), config["block_size"], config["n_embd"], config["n_hidden"],
                                 config["hierarchical"], self.whole_names, config.get("dropout", 0.0))
        self.model.to(config["device"], config["dtype"])
        self.optimizer = SGD(self.model.parameters(), config["lr"], momentum=config.get("momentum", 0.0),
                             weight_decay=config.get("weight_decay", 0.0))
        self.step = 0
        self.losses = []  # one float per step
        self.evals = []   # {"step", "split", "loss"} records
        self.seconds = 0.0  # time spent in train(), over every resume
        self.jit = True  # replay the captured step where it can (see _step_function); not saved: same results
        self._replayed = None

    @property
    def lr(self):
        """The learning rate of the last step taken (before any, of the first): what a log shows
        beside that step's loss."""
        return learning_rate(self.config, max(self.step - 1, 0))

    # --- one step: forward, loss, backward, update -------------------------------------------------

    def _loss(self, x, y):
        """Mean cross-entropy over every position that has a target."""
        logits = self.model(x)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y)

    def _sgd_step(self, x, y, on_forward=None):
        """Forward, loss, backward and the SGD update on one batch: the function that
        jit.capture records and replays. `on_forward(run)` runs between forward and backward."""
        loss = self._loss(x, y)
        if on_forward is not None:
            on_forward(self)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss

    def _step_function(self, on_forward):
        """The captured step, replayed from its third call, bit-identical to the eager one;
        the eager step when self.jit is off (train.py --no-jit), with an on_forward hook
        (it looks inside each step), and for the WaveNet (dropout draws random numbers,
        and every batch of packed names has its own length)."""
        if not self.jit or on_forward is not None or self.whole_names:
            return functools.partial(self._sgd_step, on_forward=on_forward)
        if self._replayed is None:
            self._replayed = jit.capture(self._sgd_step)
        return self._replayed

    # --- training: steps on random batches ---------------------------------------------------------

    def dataset(self, words):
        """(X, Y) of a split for this run's model: build_dataset's examples, or for the
        WaveNet build_sequences' whole names (targets IGNORE where nothing is predicted)."""
        build = build_sequences if self.whole_names else build_dataset
        return build(words, self.config["block_size"], self.itos, self.config["device"])

    def _batch(self, X, Y, ix):
        """(inputs, targets) of the examples or names at rows ix; the WaveNet's names are
        packed end to end, (1, n) inputs for n targets."""
        return pack(X, Y, ix, self.config["block_size"]) if self.whole_names else (X[ix], Y[ix])

    def train(self, X, Y, steps, on_step=None, should_stop=None, log_every=1000, on_forward=None):
        """Take SGD steps on batches drawn from (X, Y) (from dataset()) until self.step == steps, or
        until should_stop() says so: it is asked between steps, so a stop never
        leaves the parameters half updated. `on_step(run)`, if given, is called
        after every step; `on_forward(run)` between each forward and its backward
        (where retain_grad() must be called). A loss that is not finite raises
        Diverged: self.step and self.losses then count the good steps only (the
        model is past them, and must not be saved)."""
        device, batch_size = self.config["device"], self.config["batch_size"]
        X, Y = backend.to_array(X, device=device), backend.to_array(Y, device=device)
        # losses still on the device; a CPU loss is read at once, a GPU one in one transfer per log_every steps
        pending, read_every = [], 1 if device == "cpu" else log_every
        take_step = self._step_function(on_forward)
        started = time.perf_counter()
        try:
            while self.step < steps and not (should_stop and should_stop()):
                ix = randint(X.shape[0], (batch_size,), device=device)._data
                self.optimizer.lr = learning_rate(self.config, self.step)  # read by optimizer.step(), replayed too
                loss = take_step(*self._batch(X, Y, ix))
                self.step += 1
                pending.append(loss._data)
                if len(pending) >= read_every or on_step is not None:
                    self._read_losses(pending)
                if on_step is not None:
                    on_step(self)
        finally:
            self._read_losses(pending)
            self.seconds += time.perf_counter() - started
        return self

    def _read_losses(self, pending):
        """Move the pending losses into self.losses; raise Diverged at the first that is not finite."""
        if not pending:
            return
        if len(pending) == 1:
            values = [float(pending[0])]
        else:
            values = backend.to_host(backend.namespace(self.config["device"]).stack(pending)).tolist()
        pending.clear()
        first = self.step - len(values) + 1  # the step of values[0]
        for i, value in enumerate(values):
            if not math.isfinite(value):
                self.losses.extend(values[:i])
                self.step = first + i - 1
                raise Diverged(first + i, f"the loss became {value}")
        self.losses.extend(values)

    # --- the cadence of a training job -------------------------------------------------------------

    def fit(self, splits, folder, stop, on_progress=None, on_step=None, on_forward=None, progress_every=100):
        """Train on splits[0] to config["steps"], and every eval_every steps take the val loss
        (splits[1]) and save to `folder` (a RunFolder); return early, between two steps, once
        stop.requested (`stop`: a StopSignals, whose phases say what a signal may interrupt).
        on_progress(run, val) follows every stretch of at most progress_every steps, val being
        the loss just evaluated or None. A plainly failing run raises Diverged (divergence.py)."""
        (Xtr, Ytr), (Xva, Yva), _ = splits
        steps, eval_every = self.config["steps"], self.config["eval_every"]
        while self.step < steps and not stop.requested:
            start = self.step
            target = min(steps, (start // progress_every + 1) * progress_every)
            if eval_every:
                target = min(target, (start // eval_every + 1) * eval_every)
            stop.phase("training", start)
            self.train(Xtr, Ytr, target, on_step=on_step, on_forward=on_forward, should_stop=lambda: stop.requested)
            check_growth(self.losses, start, self.step)
            val = None
            if eval_every and self.step % eval_every == 0 and self.step < steps and not stop.requested:
                val = self._evaluate_split("val", Xva, Yva, stop, "evaluation")
                self.evals.append(dict(step=self.step, split="val", loss=val))
                stop.phase("saving", self.step)
                self.checkpoint(folder)
            if on_progress is not None:
                on_progress(self, val)

    def _evaluate_split(self, name, X, Y, stop, phase):
        """The loss over a whole split, in a phase a signal interrupts; Diverged if it is not
        finite, or a val loss far worse than a uniform guess's (check_split_loss)."""
        with stop.abortable(phase, self.step):
            loss = self.evaluate(X, Y)
        check_split_loss(name, loss, len(self.itos), self.step)
        return loss

    def finish(self, splits, stop, num_samples):
        """(losses, names): the final loss of each split and `num_samples` sampled names, in
        phases a signal interrupts (Interrupted, and nothing recorded); the losses join self.evals."""
        final = {name: self._evaluate_split(name, X, Y, stop, "final evaluation")
                 for name, (X, Y) in zip(("train", "val", "test"), splits)}
        with stop.abortable("sampling", self.step):
            samples = self.sample(num_samples)
        self.evals += [dict(step=self.step, split=name, loss=loss) for name, loss in final.items()]
        return final, samples

    def checkpoint(self, folder):
        """Save to the run folder's checkpoint.npz; and to best.npz too when the run was just
        evaluated and its val loss is the best so far (a state saved later, after more steps,
        is not the evaluated one)."""
        self.save(folder.checkpoint)
        vals = [e for e in self.evals if e["split"] == "val"]
        if vals and vals[-1]["step"] == self.step and vals[-1]["loss"] <= min(e["loss"] for e in vals):
            self.save(folder.best)

    # --- evaluation and sampling -------------------------------------------------------------------

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
        """Mean cross-entropy per character over a whole split, in eval mode
        (`chunk` examples, or chunk / 16 names, at a time)."""
        xp = backend.namespace(self.config["device"])
        X, Y = backend.to_array(X, device=self.config["device"]), backend.to_array(Y, device=self.config["device"])
        step = chunk // 16 if self.whole_names else chunk
        total, count = 0.0, 0
        with self._eval_mode():
            for start in range(0, X.shape[0], step):
                x, y = self._batch(X, Y, xp.arange(start, min(start + step, X.shape[0])))
                n = int((y != IGNORE).sum())
                total += self._loss(x, y).item() * n
                count += n
        return total / count

    def sample(self, num, seed=None, temperature=1.0, max_length=50):
        """Names drawn one character at a time from the model, in eval mode."""
        generator = Generator().manual_seed(self.config["seed"] if seed is None else seed)
        block_size, names = self.config["block_size"], []
        with self._eval_mode():
            for _ in range(num):
                context, name = [0] * block_size, []
                while len(name) < max_length:
                    logits = self.model(Tensor([context], device=self.config["device"]))
                    last = logits._data.reshape(-1, logits.shape[-1])[-1]  # the WaveNet gives every position's
                    probs = Tensor(backend.softmax_on_host(last, temperature))
                    ix = multinomial(probs, 1, generator=generator).item()
                    if ix == 0:
                        break
                    name.append(self.itos[ix])
                    context = context[1:] + [ix]
                names.append("".join(name))
        return names

    # --- saving and loading, in checkpoint.py's format ---------------------------------------------

    def save(self, path):
        """Write the run to `path` atomically; raise Diverged rather than save weights that are not finite."""
        write_checkpoint(self, path)

    @classmethod
    def load(cls, path, device=None):
        """A saved run, on its own device or on `device`. A file that is not a checkpoint
        raises CheckpointError (checkpoint.py says what is checked before anything is built)."""
        return read_checkpoint(path, cls, device)
