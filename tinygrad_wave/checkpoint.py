"""A training run's checkpoint: one .npz holding everything the next step depends on.

The arrays are the model's state_dict ("model.<name>"), the optimiser's velocities
("optimizer.<name>", none without momentum) and the losses so far ("losses", float64); the
metadata (JSON) holds the config, the vocabulary, the step, the evaluations, the seconds
trained, the random generator's state and the names of the velocities saved. A run stopped at
step k and resumed from its checkpoint gives the same losses as one that never stopped.

Reading trusts nothing in the file: a file that is not a checkpoint raises CheckpointError,
the metadata and the config are checked before the model is built, and only the arrays this
model has are read, each checked against its shape first.
"""
import math
import zipfile
from pathlib import Path

from . import backend
from .divergence import check_weights
from .random import check_state, default_generator


class CheckpointError(ValueError):
    """A file that is not a checkpoint of a Run; the message says why."""


def write_checkpoint(run, path):
    """Write `run` to `path` atomically; raise Diverged rather than save weights that are not finite."""
    state = run.model.state_dict()
    check_weights(state, run.step)
    arrays = {f"model.{name}": a for name, a in state.items()}
    velocities = {f"optimizer.{name}": a for name, a in run.optimizer.state_dict().items()}
    arrays.update(velocities, losses=backend.to_array(run.losses, dtype="float64"))
    meta = dict(config=run.config, itos=run.itos, step=run.step, evals=run.evals,
                seconds=run.seconds, rng_state=default_generator.state_dict(), optimizer=sorted(velocities))
    backend.save_arrays(path, arrays, meta)


def read_checkpoint(path, make_run, device=None):
    """The run saved at `path`, built by make_run(config, itos) (the Run class), on its own
    device or on `device`."""
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
        run = make_run(config, meta["itos"])
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


def check_meta(meta):
    """Raise ValueError, naming the field, unless a checkpoint's metadata has every field of
    the kind write_checkpoint writes (the config is checked by the Run, the generator by check_state)."""
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
