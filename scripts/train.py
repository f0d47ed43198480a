#!/usr/bin/env python
"""Train makemore part 5's character model on names.txt, then sample names.

    python scripts/train.py                          # the reference run: 76,579 params, 200,000 steps
    python scripts/train.py --model mlp3 --steps 20000
    python scripts/train.py --model wavenet          # a WaveNet trained on whole names (74,547 params)
    python scripts/train.py --resume --out runs/hier76k   # carry on after Ctrl-C

OUT/best.npz keeps the run as it was at its best val loss (as makemore keeps
its best model); the reported losses are the final checkpoint's.

Ctrl-C or SIGTERM, at any moment, saves the run to OUT/checkpoint.npz and exits
(status 130 / 143); --resume continues it and gives the same losses as an
unbroken run. A run that diverges ends with status 1 and keeps the last good
checkpoint: a loss that stops being a finite number, a training loss 100 times
its first step's, or a val loss more than twice a uniform guess's, log(vocabulary
size) (2 x 3.30 on names.txt): signs of a learning rate far too high. An OUT that holds a run needs --resume or
--overwrite, and an OUT that another run is using is refused.
"""
import argparse
import math
import os
import shlex
import sys
from contextlib import ExitStack, closing
from importlib.util import find_spec

from tinygrad_wave import backend, teach
from tinygrad_wave.threads import blas_threads, default_blas_threads
from tinygrad_wave.cli import fail, non_negative_float, non_negative_int, positive_float, positive_int, probability
from tinygrad_wave.data import DataError, IGNORE_INDEX, build_vocab, ensure_names, load_words, sha256_of, split_words
from tinygrad_wave.models import PRESETS, count_parameters
from tinygrad_wave.runfolder import FolderError, RunFolder
from tinygrad_wave.stopping import Interrupted, StopSignals
from tinygrad_wave.divergence import Diverged
from tinygrad_wave.training import DEFAULTS, PRESET_TRAINING, Run

PROGRESS_EVERY = 100  # steps between progress-bar updates
INTERRUPTED = 130     # the exit status after Ctrl-C (128 + SIGINT); SIGTERM gives 143
DIVERGED = 1          # the exit status of a diverged run (divergence.Diverged)
SMALLEST_PLOTTED_LOSS = 1e-10  # a loss of exactly 0 plots as this: a log axis has no 0
# setup.cfg's "scripts" extra, which an install with only the teach extra (lesson 3's) lacks in part
SCRIPT_EXTRAS = {"tqdm": "the progress bar", "matplotlib": "loss.png", "threadpoolctl": "the BLAS threads",
                 "tensorboardX": "the TensorBoard events"}
TENSORBOARD_EVENTS = "events.out.tfevents.*"  # the files a SummaryWriter writes into --out
# the config keys that flags set; on --resume only these may differ from the run's (and then apply)
CONFIG_FLAGS = ("model", "steps", "batch_size", "lr", "lr_decay_step", "momentum", "weight_decay", "dropout",
                "n_embd", "n_hidden", "block_size", "device", "dtype", "seed", "eval_every")
CHANGEABLE_ON_RESUME = ("steps", "eval_every", "device")


def parser():
    """train.py's flags (scripts/sweep.py reads them to check a search space)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=PRESETS,
                   help="a row of makemore part 5's log: mlp3 (12K params, 3-char context), flat8 (22K, "
                        "8-char flat MLP), hier22k (22K, hierarchical), hier76k (76K, the default); or a "
                        "WaveNet trained on whole names: wavenet (75K, receptive field 8), wavenet16 (76K, 16). "
                        "A preset sets the model and, for the WaveNets, its own training defaults")
    p.add_argument("--data", help="path of names.txt (default: data/names.txt, downloaded when missing)")
    wavenet = PRESET_TRAINING["wavenet"]
    p.add_argument("--steps", type=positive_int,
                   help=f"total SGD steps (default {DEFAULTS['steps']}, wavenet {wavenet['steps']}); "
                        "with --resume, may extend the run")
    p.add_argument("--batch-size", type=positive_int,
                   help=f"examples per step, or whole names for a WaveNet (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=positive_float,
                   help=f"learning rate, positive (default {DEFAULTS['lr']}, wavenet {wavenet['lr']})")
    p.add_argument("--lr-decay-step", type=positive_int,
                   help=f"from this step on the learning rate is lr/10 (default {DEFAULTS['lr_decay_step']}, "
                        f"wavenet {wavenet['lr_decay_step']})")
    p.add_argument("--momentum", type=non_negative_float,
                   help=f"SGD momentum, torch's rule (default {DEFAULTS['momentum']}, wavenet {wavenet['momentum']})")
    p.add_argument("--weight-decay", type=non_negative_float, help=f"SGD weight decay (default {DEFAULTS['weight_decay']})")
    p.add_argument("--dropout", type=probability,
                   help=f"WaveNet only: dropout on the gated activations (default {PRESETS['wavenet']['dropout']})")
    p.add_argument("--n-embd", type=positive_int, help="embedding size (default: the preset's)")
    p.add_argument("--n-hidden", type=positive_int, help="hidden units per layer (default: the preset's)")
    p.add_argument("--block-size", type=positive_int, help="characters of context (default: the preset's)")
    p.add_argument("--device", choices=backend.DEVICES,
                   help=f"cpu (NumPy) or cuda (CuPy) (default {DEFAULTS['device']}); with --resume, may move the run")
    p.add_argument("--dtype", choices=["float32", "float64"], help=f"default {DEFAULTS['dtype']}")
    p.add_argument("--seed", type=non_negative_int, help=f"seed of weights and batches (default {DEFAULTS['seed']})")
    p.add_argument("--out", help="folder for checkpoint.npz, best.npz, log.json and loss.png (default runs/MODEL)")
    p.add_argument("--eval-every", type=non_negative_int,
                   help=f"every N steps: val loss and a checkpoint; 0 for never (default {DEFAULTS['eval_every']}); "
                        "with --resume, may change")
    p.add_argument("--num-samples", type=non_negative_int, default=20,
                   help="names to sample at the end (default %(default)s)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true",
                       help="continue the run in OUT with its own settings: only --steps, --eval-every and "
                            "--device may differ from them")
    start.add_argument("--overwrite", action="store_true", help="start a new run in an OUT that holds one, replacing it")
    p.add_argument("--threads", type=positive_int,
                   help="BLAS threads (default: 1 for batches up to 128, where one is as fast and safer; else all)")
    p.add_argument("--diagnostics", action="store_true",
                   help="also write makemore part 3's figures to OUT: activations.png, gradients.png and weights.png "
                        "(histograms per layer at the last step of this session) and update_ratio.png (the "
                        "update-to-data ratio of each weight over the run, earlier sessions of a resumed run "
                        "included when they had --diagnostics too), with their numbers in log.json; "
                        "training is a little slower")
    p.add_argument("--no-jit", action="store_true",
                   help="build and walk the graph at every step instead of replaying the step captured at the "
                        "first two (tinygrad_wave.jit): slower, the same numbers bit for bit. The WaveNets and "
                        "--diagnostics always run eagerly")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv=None):
    return parser().parse_args(argv)


def missing_extras():
    """The packages of the scripts extra that are not installed, each with what needs it."""
    return [f"{name} ({use})" for name, use in SCRIPT_EXTRAS.items() if find_spec(name) is None]


def given(args):
    """The config settings the command line gives, by config key."""
    return {key: getattr(args, key) for key in CONFIG_FLAGS if getattr(args, key) is not None}


def config_from(args):
    model = args.model or DEFAULTS["model"]
    return {**DEFAULTS, **PRESETS[model], **PRESET_TRAINING.get(model, {}), "model": model, **given(args)}


def apply_resume_flags(args, config):
    """Refuse flags that contradict the run being resumed, naming each; apply those that may change."""
    differ = {key: value for key, value in given(args).items() if value != config.get(key, DEFAULTS[key])}
    fixed = [f"--{key.replace('_', '-')} {value} (the run has {config.get(key, DEFAULTS[key])})"
             for key, value in differ.items() if key not in CHANGEABLE_ON_RESUME]
    if fixed:
        raise ValueError(f"--resume keeps the run's settings, and these flags contradict them: {', '.join(fixed)}. "
                         "Drop them to resume, or start over with --overwrite")
    config.update(differ)


def start_or_resume(args, folder):
    """(run, splits): a new run from the flags, or the run saved in the folder, with the
    data file it was trained on (checked by its sha256) split into (X, Y) pairs."""
    if not args.resume:
        if folder.checkpoint.exists() and not args.overwrite:
            raise FolderError(f"{folder.path} already holds a run (checkpoint.npz): pass --resume to "
                              "continue it, or --overwrite to start over")
        path = ensure_names(args.data)
        words = load_words(path)
        run = Run(dict(config_from(args), data=str(path.resolve()), data_sha256=sha256_of(path)), build_vocab(words))
    else:
        if not folder.checkpoint.is_file():
            raise DataError(f"--resume: there is no checkpoint at {folder.checkpoint}")
        run = Run.load(folder.checkpoint, device=args.device)
        run.config.setdefault("eval_every", DEFAULTS["eval_every"])  # checkpoints older than the setting
        apply_resume_flags(args, run.config)
        path = ensure_names(args.data or run.config["data"])
        if sha256_of(path) != run.config["data_sha256"]:
            raise DataError(f"--resume: {path} is not the file this run was trained on "
                            f"({run.config['data']}, sha256 {run.config['data_sha256'][:12]}...)")
        words = load_words(path)
    splits = [run.dataset(s) for s in split_words(words)]
    return run, splits


def earlier_update_ratios(folder, run):
    """--diagnostics' update-to-data ratios of the sessions before a resumed one (log.json),
    up to the checkpoint's step; None when they recorded none."""
    log = folder.read_log() or {}
    ratios = (log.get("diagnostics") or {}).get("update_ratios")
    if not ratios:
        return None
    kept = [i for i, step in enumerate(ratios["step"]) if step <= run.step]
    return {name: [values[i] for i in kept] for name, values in ratios.items()}


def draw_losses(ax, losses, evals=(), window=1000, dropout=0.0, title=None):
    """The training loss as its mean over windows of `window` steps, and beside it each
    evaluation of the whole validation split, on a log axis (a loss falls fast, then slowly).
    With dropout the training curve sits above the evaluations, which run without it."""
    window = max(1, min(window, len(losses) // 10))
    means = [max(sum(losses[i:i + window]) / window, SMALLEST_PLOTTED_LOSS)
             for i in range(0, len(losses) - window + 1, window)]
    label = f"train (mean of {window} steps" + (f", dropout {dropout} on: above val, which has it off)"
                                                 if dropout else ")")
    ax.plot([window * (i + 1) for i in range(len(means))], means, label=label)
    val = [(e["step"], max(e["loss"], SMALLEST_PLOTTED_LOSS)) for e in evals if e["split"] == "val"]
    if val:
        ax.plot(*zip(*val), "o-", label="val (whole split)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title)


def run_title(run):
    """Which run a figure shows, for a figure seen apart from its folder."""
    return (f"{run.config['model']} ({count_parameters(run.model):,} parameters), "
            f"batch {run.config['batch_size']}, seed {run.config['seed']}")


def loss_plot_title(run):
    return f"{run_title(run)}: loss over {run.step:,} steps"


def plot_losses(losses, path, evals=(), window=1000, dropout=0.0, title=None):
    teach.save_figure(path, lambda ax: draw_losses(ax, losses, evals, window, dropout, title), figsize=(8, 4))


def write_outputs(run, folder, final=None, samples=None, diverged=None, diagnostics=None):
    """log.json and loss.png, and with --diagnostics part 3's figures (the checkpoint is
    saved apart: a diverged run has none to save, nor diagnostics worth drawing)."""
    numbers = (diagnostics.write(folder.path, title=f"{run_title(run)}: step {run.step:,}")
               if diagnostics is not None and not diverged else None)
    folder.write_log(dict(config=run.config, params=count_parameters(run.model), step=run.step,
                          train_seconds=round(run.seconds, 2), evals=run.evals, final=final,
                          samples=samples, diverged=diverged, losses=run.losses, diagnostics=numbers))
    if run.losses:
        plot_losses(run.losses, folder.plot, run.evals, dropout=run.config.get("dropout", 0.0),
                    title=loss_plot_title(run))


def final_losses(run):
    """The train/val/test losses recorded at the run's last step, or None before its final evaluation."""
    final = {e["split"]: e["loss"] for e in run.evals if e["step"] == run.step}
    return final if "test" in final else None


def hooks(diagnostics, on_step):
    """Run.fit's (on_forward, on_step): the caller's on_step, and --diagnostics' recording."""
    if diagnostics is None:
        return None, on_step

    def after_step(run):
        diagnostics.after_step(run.model, run.step, run.lr)
        if on_step is not None:
            on_step(run)
    return (lambda run: diagnostics.before_backward(run.model)), after_step


def show_progress(bar):
    """Run.fit's on_progress: the bar moved to the run's step, and a line for each val loss."""
    def on_progress(run, val):
        bar.update(run.step - bar.n)
        if run.losses:
            bar.set_postfix(loss=f"{run.losses[-1]:.4f}", lr=run.lr, refresh=False)
        if val is not None:
            bar.write(f"step {run.step:7d}: val loss {val:.4f}")
    return on_progress


class TensorBoardLog:
    """The run's numbers as TensorBoard events in its --out folder, to watch while it trains
    (`tensorboard --logdir runs`): after each stretch of steps the mean training loss of the
    stretch and the learning rate, each val loss, and at the end the final losses; with
    --diagnostics also each recorded update-to-data ratio (log10), and at each evaluation the
    Tanh layers' activation statistics and histograms of their outputs."""

    def __init__(self, folder, run, diagnostics):
        from tinygrad_wave.utils.tensorboard import SummaryWriter  # here, as tqdm: main checks the extra
        # a resumed run drops the events an earlier session wrote after the checkpoint's step
        # and names its file by the step it starts from: tensorboardX names a file by the second and
        # the host alone, so a session resumed within the same second would overwrite the first's file
        self.writer = SummaryWriter(folder.path, purge_step=run.step + 1 if run.step else None,
                                    filename_suffix=f".from_step_{run.step}")
        self.diagnostics, self.logged_step = diagnostics, run.step
        self.logged_ratios = len(diagnostics.steps) if diagnostics is not None else 0

    def progress(self, run, val):
        stretch = run.losses[self.logged_step:run.step]
        if stretch:
            self.writer.add_scalar("Loss/train", sum(stretch) / len(stretch), run.step)
            self.writer.add_scalar("lr", run.lr, run.step)
        self.logged_step = run.step
        if val is not None:
            self.writer.add_scalar("Loss/val", val, run.step)
        if self.diagnostics is not None:
            self._diagnostics(run.step, val is not None)

    def _diagnostics(self, step, evaluated):
        recorded = zip(self.diagnostics.steps[self.logged_ratios:], self.diagnostics.ratios[self.logged_ratios:])
        for ratio_step, ratios in recorded:
            for name, ratio in ratios.items():
                if math.isfinite(ratio):  # (a weight that did not move has log10 ratio -inf)
                    self.writer.add_scalar(f"UpdateRatio/{name}", ratio, ratio_step)
        self.logged_ratios = len(self.diagnostics.steps)
        if evaluated:
            for row in self.diagnostics.activation_records():
                layer = f"Activations/layers.{row.layer}"  # (a Tanh: TensorBoard's tags take no spaces)
                for stat in ("mean", "std", "saturated"):
                    self.writer.add_scalar(f"{layer}.{stat}", getattr(row, stat), step)
                self.writer.add_histogram(layer, self.diagnostics.model.layers[row.layer].out, step)

    def final(self, run, losses):
        for split, loss in losses.items():
            self.writer.add_scalar(f"Final/{split}", loss, run.step)

    def close(self):
        self.writer.close()


def saved_files(folder):
    """The last line of a session: the folder and the run's files in it, TensorBoard's by their
    count (their names carry a time and a host)."""
    paths = (folder.checkpoint, folder.best, folder.log, folder.plot,
             *(folder.path / name for name in teach.TrainingDiagnostics.FIGURES))
    names = [path.name for path in paths if path.is_file()]
    events = len(list(folder.path.glob(TENSORBOARD_EVENTS)))
    if events:
        names.append(f"{events} TensorBoard event file{'s' if events > 1 else ''}")
    return f"saved in {folder.path}{os.sep}: {', '.join(names)}"


def train_and_report(run, splits, args, folder, stop, on_step, earlier_ratios=None, on_eval=None):
    """Train, evaluate, sample and save. A signal saves the run as it stands (exit 128 +
    its number); a loss that is not finite ends it with the last good checkpoint kept."""
    config = run.config
    if run.step >= config["steps"] and final_losses(run):
        print(f"the run in {folder.path} already finished {run.step:,} steps: to train it further, "
              f"pass --steps with a total above {run.step:,}")
        return 0
    examples = int((splits[0][1] != IGNORE_INDEX).sum())  # characters to predict, with either kind of batch
    if run.whole_names:
        data, batch = f"{len(splits[0][0]):,} training names ({examples:,} characters)", \
            f"{config['batch_size']} whole name" + ("s" if config["batch_size"] > 1 else "")
    else:
        data, batch = f"{examples:,} training examples", f"batch {config['batch_size']}"
    print(f"{config['model']}: {count_parameters(run.model):,} parameters, {data}, "
          f"{config['steps']:,} steps of {batch} on {config['device']} "
          f"in {config['dtype']}" + (f", from step {run.step:,}" if run.step else ""))
    threads = args.threads or default_blas_threads(config["batch_size"])
    final = samples = None
    # about 1,000 points of update-to-data ratio over the session, whatever its length
    diagnostics = teach.TrainingDiagnostics(every=max(1, (config["steps"] - run.step) // 1000),
                                            earlier=earlier_ratios) if args.diagnostics else None
    on_forward, on_step = hooks(diagnostics, on_step)
    from tqdm import tqdm  # here, so that main can say which extra installs it
    events = TensorBoardLog(folder, run, diagnostics)
    try:
        with blas_threads(threads), tqdm(total=config["steps"], initial=run.step, unit="step",
                                                 disable=args.quiet, dynamic_ncols=True) as bar, \
                closing(events):
            on_progress = show_progress(bar)

            def progress(run, val):
                on_progress(run, val)
                events.progress(run, val)
                if val is not None and on_eval is not None:
                    on_eval(run, val)
            try:
                run.fit(splits, folder, stop, progress, on_step, on_forward, progress_every=PROGRESS_EVERY)
                if not stop.requested:
                    final, samples = run.finish(splits, stop, args.num_samples)
                    events.final(run, final)
            except Interrupted:  # what the phase computed is dropped: the run itself is whole
                final = samples = None
        stop.phase("saving", run.step)
        run.checkpoint(folder)
    except Diverged as e:
        write_outputs(run, folder, diverged=str(e))
        saved = folder.saved_step()
        kept = (f"{folder.checkpoint} keeps step {saved:,}, the last good one" if saved is not None
                else "No checkpoint was saved before it")
        print(f"error: {e}: training stopped. The learning rate (--lr {config['lr']}) is probably too high: "
              f"start again with a lower one (and --overwrite). {kept}; log.json and loss.png hold the "
              f"steps before it", file=sys.stderr)
        print(saved_files(folder))
        return DIVERGED
    write_outputs(run, folder, final, samples, diagnostics=diagnostics)
    if stop.requested:
        print(f"stopped by {stop.name} at step {run.step:,}: checkpoint saved to {folder.checkpoint}\n"
              f"resume with: python scripts/train.py --resume --out {shlex.quote(str(folder.path))}\n"
              + saved_files(folder))
        return stop.exit_status
    print(f"train {final['train']:.4f}  val {final['val']:.4f}  test {final['test']:.4f}  "
          f"({run.seconds:.0f} s of training)")
    print("\n".join(samples + [saved_files(folder)]))
    return 0


def main(argv=None, on_step=None, on_eval=None):
    """on_step(run) after every step; on_eval(run, val) after every val loss of the run's
    cadence (every --eval-every steps, once its checkpoint is saved)."""
    args = parse_args(argv)
    if missing_extras():
        return fail(f"train.py needs {' and '.join(missing_extras())}, which the scripts extra installs: "
                    'pip install -e ".[scripts]"')
    folder = RunFolder(args.out or f"runs/{args.model or DEFAULTS['model']}")
    with StopSignals() as stop, ExitStack() as lock:
        try:
            folder.prepare()
            lock.enter_context(folder.locked())
            with stop.abortable("loading"):
                run, splits = start_or_resume(args, folder)
            run.jit = not args.no_jit
            if args.diagnostics and not hasattr(run.model, "layers"):
                raise ValueError(f"--diagnostics reads the layers of makemore part 5's models (mlp3, flat8, "
                                 f"hier22k, hier76k), and {run.config['model']} is not a stack of layers")
            earlier_ratios = earlier_update_ratios(folder, run) if args.resume and args.diagnostics else None
        except (FolderError, DataError, ValueError, RuntimeError) as e:  # bad flags, data, checkpoint; no GPU
            lock.close()
            folder.remove_if_unused()
            return fail(e)
        except Interrupted:
            lock.close()
            folder.remove_if_unused()
            print(f"stopped by {stop.name} before training began: nothing to save", file=sys.stderr)
            return stop.exit_status
        if args.overwrite:
            folder.clear()
            for name in teach.TrainingDiagnostics.FIGURES:  # a previous run's --diagnostics
                (folder.path / name).unlink(missing_ok=True)
            for path in folder.path.glob(TENSORBOARD_EVENTS):  # and its TensorBoard history
                path.unlink()
        return train_and_report(run, splits, args, folder, stop, on_step, earlier_ratios, on_eval)


if __name__ == "__main__":
    sys.exit(main())
