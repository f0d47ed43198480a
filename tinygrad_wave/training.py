"""A training run of makemore part 5, as a value that can stop and resume.

A Run holds everything the next step depends on -- the model (parameters and
batch-norm buffers), the optimiser's momentum, the step counter, the random
generator's state and the losses so far -- and saves all of it to one .npz,
so that a run stopped at step k and resumed gives the same losses as one that
never stopped.

The part 5 models train on batches of (context, next character) examples from
build_dataset; the WaveNet on batches of whole names laid end to end (pack),
learning from every position at once. Both report the mean loss per character
over the same splits, so their numbers compare directly.

Run.fit keeps a training job's cadence: train to the last step, evaluate and
save every eval_every steps, stop between two steps when a signal asks. A run
whose loss or weights stop being finite numbers, or that is plainly failing
(a val loss twice a uniform guess's, a training loss grown a hundredfold),
raises Diverged and is never saved.
"""
import functools
import math
import numbers
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

from . import backend, jit
from . import functional as F
from .autograd import no_grad
from .data import END, IGNORE, build_dataset, build_sequences, pack
from .models import PRESETS, build_model, parameter_count
from .optim import SGD
from .random import Generator, check_state, default_generator, manual_seed, multinomial, randint
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
# a plainly failing run (fit): a training loss 100 times its first step's, or a val loss twice a uniform guess's
GROWTH_LIMIT = 100
FAILING_VAL = 2
MAX_PARAMETERS = 10 ** 8  # 1,300 times the reference model: a bigger config is a typo, refused before allocating


class Diverged(Exception):
    """The loss or the weights stopped being finite numbers, or the run is plainly failing (Run.fit);
    `step` is the step where it was found."""

    def __init__(self, step, what):
        super().__init__(f"{what} at step {step}")
        self.step = step


class CheckpointError(ValueError):
    """A file that is not a checkpoint of a Run; the message says why."""


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


def check_meta(meta):
    """Raise ValueError, naming the field, unless a checkpoint's metadata has every field of
    the kind Run.save writes (the config is checked by check_config, the generator by check_state)."""
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not isinstance(meta, dict):
        raise ValueError(f"its metadata is a JSON {type(meta).__name__}, not an object")
    for field, fits, what in (("config", lambda v: isinstance(v, dict), "an object"),
                              ("step", whole, "an integer >= 0"),
                              ("seconds", lambda v: number(v) and v >= 0, "a finite number >= 0"),
                              ("evals", lambda v: isinstance(v, list) and all(
                                  isinstance(e, dict) and set(e) == {"step", "split", "loss"} and whole(e["step"])
                                  and isinstance(e["split"], str) and number(e["loss"]) for e in v),
                               "a list of {step, split, loss} records"),
                              ("optimizer", lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
                               "a list of member names"),
                              ("rng_state", lambda v: isinstance(v, dict), "a generator state")):
        if field not in meta:
            raise ValueError(f"its metadata has no field {field!r}")
        if not fits(meta[field]):
            raise ValueError(f"its metadata field {field!r} must be {what}, not {meta[field]!r:.80}")
    try:
        check_state(meta["rng_state"])
    except ValueError as e:
        raise ValueError(f"its metadata field 'rng_state': {e}") from None


def learning_rate(config, step):
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

    # --- saving and loading -----------------------------------------------------------

    def save(self, path):
        """Write the run to `path` atomically; raise Diverged rather than save weights that are not finite."""
        state = self.model.state_dict()
        bad = [name for name, a in state.items() if not backend.all_finite(a)]
        if bad:
            raise Diverged(self.step, f"the weights ({', '.join(bad)}) are no longer finite numbers")
        arrays = {f"model.{name}": a for name, a in state.items()}
        velocities = {f"optimizer.{name}": a for name, a in self.optimizer.state_dict().items()}
        arrays.update(velocities, losses=backend.to_array(self.losses, dtype="float64"))
        meta = dict(config=self.config, itos=self.itos, step=self.step, evals=self.evals,
                    seconds=self.seconds, rng_state=default_generator.state_dict(), optimizer=sorted(velocities))
        backend.save_arrays(path, arrays, meta)

    @classmethod
    def load(cls, path, device=None):
        """A saved run, on its own device or on `device`. A file that is not a checkpoint
        raises CheckpointError; its config is checked before the model is built, and only
        the arrays this model has are read, each checked against its shape first."""
        if not Path(path).is_file():
            raise CheckpointError(f"there is no checkpoint at {path}")
        if not zipfile.is_zipfile(path):  # else NumPy would say to unpickle it: never for a file from outside
            raise CheckpointError(f"{path} is not a checkpoint of train.py: a checkpoint is an .npz archive "
                                  "(checkpoint.npz or best.npz in the run's --out folder)")
        try:
            meta = backend.load_meta(path)
            if isinstance(meta, dict) and isinstance(meta.get("rng_state"), str):  # NumPy's PCG64 state, as JSON text
                raise CheckpointError(f"{path} was saved before train.py drew torch's random numbers: its "
                                      "generator state cannot give the batches it would have drawn next, so "
                                      "the run cannot resume exactly. Start it again (the same --seed).")
            check_meta(meta)
            config = meta["config"]
            if device is not None:
                config["device"] = device
            run = cls(config, meta["itos"])
            shapes = {f"model.{name}": a.shape for name, a in run.model.state_dict().items()}
            saved = meta.get("optimizer", [])  # the velocities the file holds (none without momentum)
            velocities = {f"optimizer.velocity.{i}": p.shape for i, p in enumerate(run.optimizer.params)
                          if f"optimizer.velocity.{i}" in saved}
            arrays = backend.load_arrays(path, dict(shapes, **velocities, losses=(meta["step"],)))
            for name, a in arrays.items():  # (a cast would hide a file that is not this run's)
                expected = "float64" if name == "losses" else config["dtype"]
                if a.dtype != expected:
                    raise ValueError(f"{name} is stored as {a.dtype}, expected {expected}")
            run.model.load_state_dict({name[len("model."):]: arrays[name] for name in shapes})
            run.optimizer.load_state_dict({name[len("optimizer."):]: arrays[name] for name in velocities})
            if not all(backend.all_finite(a) for a in arrays.values()):
                raise ValueError("it holds numbers that are not finite, as a diverged run does")
            run.step, run.evals, run.seconds = meta["step"], meta["evals"], meta["seconds"]
            run.losses = arrays["losses"].tolist()
            default_generator.load_state_dict(meta["rng_state"])
        except CheckpointError:
            raise
        except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{path} is not a checkpoint of train.py ({type(e).__name__}: {e})") from None
        return run

    # --- data ------------------------------------------------------------------------

    def dataset(self, words):
        """(X, Y) of a split for this run's model: build_dataset's examples, or for the
        WaveNet build_sequences' whole names (targets IGNORE where nothing is predicted)."""
        build = build_sequences if self.whole_names else build_dataset
        return build(words, self.config["block_size"], self.itos, self.config["device"])

    def _batch(self, X, Y, ix):
        """(inputs, targets) of the examples or names at rows ix; the WaveNet's names are
        packed end to end, (1, n) inputs for n targets."""
        return pack(X, Y, ix, self.config["block_size"]) if self.whole_names else (X[ix], Y[ix])

    def _loss(self, x, y):
        """Mean cross-entropy over every position that has a target."""
        logits = self.model(x)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y)

    # --- training -------------------------------------------------------------------

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

    # --- the cadence of a training job --------------------------------------------------

    def fit(self, splits, folder, stop, on_progress=None, on_step=None, on_forward=None, progress_every=100):
        """Train on splits[0] to config["steps"], and every eval_every steps take the val loss
        (splits[1]) and save to `folder` (a RunFolder); return early, between two steps, once
        stop.requested (`stop`: a StopSignals, whose phases say what a signal may interrupt).
        on_progress(run, val) follows every stretch of at most progress_every steps, val being
        the loss just evaluated or None. A plainly failing run raises Diverged (_check_growth,
        _evaluate_split)."""
        (Xtr, Ytr), (Xva, Yva), _ = splits
        steps, eval_every = self.config["steps"], self.config["eval_every"]
        while self.step < steps and not stop.requested:
            start = self.step
            target = min(steps, (start // progress_every + 1) * progress_every)
            if eval_every:
                target = min(target, (start // eval_every + 1) * eval_every)
            stop.phase("training", start)
            self.train(Xtr, Ytr, target, on_step=on_step, on_forward=on_forward, should_stop=lambda: stop.requested)
            self._check_growth(start)
            val = None
            if eval_every and self.step % eval_every == 0 and self.step < steps and not stop.requested:
                val = self._evaluate_split("val", Xva, Yva, stop, "evaluation")
                self.evals.append(dict(step=self.step, split="val", loss=val))
                stop.phase("saving", self.step)
                self.save_to(folder)
            if on_progress is not None:
                on_progress(self, val)

    def finish(self, splits, stop, num_samples):
        """(losses, names): the final loss of each split and `num_samples` sampled names, in
        phases a signal interrupts (Interrupted, and nothing recorded); the losses join self.evals."""
        final = {name: self._evaluate_split(name, X, Y, stop, "final evaluation")
                 for name, (X, Y) in zip(("train", "val", "test"), splits)}
        with stop.abortable("sampling", self.step):
            samples = self.sample(num_samples)
        self.evals += [dict(step=self.step, split=name, loss=loss) for name, loss in final.items()]
        return final, samples

    def save_to(self, folder):
        """The checkpoint; and best.npz too when the run was just evaluated and its val loss
        is the best so far (a state saved later, after more steps, is not the evaluated one)."""
        self.save(folder.checkpoint)
        vals = [e for e in self.evals if e["split"] == "val"]
        if vals and vals[-1]["step"] == self.step and vals[-1]["loss"] <= min(e["loss"] for e in vals):
            self.save(folder.best)

    def _check_growth(self, start):
        """Diverged when the training loss of steps start+1..self.step has grown by orders of
        magnitude from the first step's: the weights are still finite numbers, but the run is lost."""
        if self.step == start:
            return
        first, recent = self.losses[0], sum(self.losses[start:]) / (self.step - start)
        if recent > GROWTH_LIMIT * first:
            raise Diverged(self.step, f"the training loss grew from {first:.4g} at step 1 to a mean of "
                                      f"{recent:.4g} over steps {start + 1:,}-{self.step:,}")

    def _evaluate_split(self, name, X, Y, stop, phase):
        """The loss over a whole split, in a phase a signal interrupts. Diverged if it is not
        finite, or for val, if it is over FAILING_VAL times log(vocabulary size), the loss of a
        uniform guess: training made the model far worse than knowing nothing. (Just above the
        uniform guess is no proof: data close to random letters sits there however it trains.)"""
        with stop.abortable(phase, self.step):
            loss = self.evaluate(X, Y)
        if not math.isfinite(loss):
            raise Diverged(self.step, f"the {name} loss became {loss}")
        uniform = math.log(len(self.itos))
        if name == "val" and loss > FAILING_VAL * uniform:
            raise Diverged(self.step, f"the val loss is {loss:.4f}, more than {FAILING_VAL} times a uniform "
                                      f"guess's over the {len(self.itos)} characters (log {len(self.itos)} = "
                                      f"{uniform:.4f}),")
        return loss

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
