#!/usr/bin/env python
"""Train makemore part 5's character model on names.txt, then sample names.

    python scripts/train.py                          # the reference run: 76,579 params, 200,000 steps
    python scripts/train.py --model mlp3 --steps 20000
    python scripts/train.py --resume --out runs/hier76k   # carry on after Ctrl-C

Ctrl-C finishes the step in progress, saves OUT/checkpoint.npz and exits;
--resume continues from it and gives the same losses as an unbroken run.
"""
import argparse
import json
import math
import sys
import zipfile
from pathlib import Path

from tqdm import tqdm

from tinygrad_wave import backend
from tinygrad_wave.data import (DataError, build_dataset, build_vocab, ensure_names, load_words, sha256_of,
                                split_words)
from tinygrad_wave.models import PRESETS, count_parameters
from tinygrad_wave.training import DEFAULTS, Run, learning_rate

PROGRESS_EVERY = 100  # steps between progress-bar updates
INTERRUPTED = 130     # the exit status of a program stopped by Ctrl-C
SMALLEST_PLOTTED_LOSS = 1e-10  # a loss of exactly 0 plots as this: log10(0) is minus infinity


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=PRESETS, default=DEFAULTS["model"],
                   help="a row of makemore part 5's log: mlp3 (12K params, 3-char context), flat8 (22K, "
                        "8-char flat MLP), hier22k (22K, hierarchical), hier76k (76K, the default)")
    p.add_argument("--data", help="path of names.txt (default: data/names.txt, downloaded when missing)")
    p.add_argument("--steps", type=positive, help=f"total SGD steps (default {DEFAULTS['steps']})")
    p.add_argument("--batch-size", type=positive, default=DEFAULTS["batch_size"], help="examples per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="learning rate (default %(default)s)")
    p.add_argument("--lr-decay-step", type=positive, default=DEFAULTS["lr_decay_step"],
                   help="from this step on the learning rate is lr/10 (default %(default)s)")
    p.add_argument("--n-embd", type=positive, help="embedding size (default: the preset's)")
    p.add_argument("--n-hidden", type=positive, help="hidden units per layer (default: the preset's)")
    p.add_argument("--block-size", type=positive, help="characters of context (default: the preset's)")
    p.add_argument("--device", choices=backend.DEVICES, default="cpu", help="cpu (NumPy) or cuda (CuPy)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=DEFAULTS["dtype"], help="default %(default)s")
    p.add_argument("--seed", type=non_negative, default=DEFAULTS["seed"], help="seed of weights and batches (default %(default)s)")
    p.add_argument("--out", help="folder for checkpoint.npz, log.json and loss.png (default runs/MODEL)")
    p.add_argument("--eval-every", type=non_negative, default=10_000,
                   help="every N steps: val loss and a checkpoint; 0 for never (default %(default)s)")
    p.add_argument("--num-samples", type=non_negative, default=20, help="names to sample at the end (default %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz; its settings win, except --steps, which may extend it")
    p.add_argument("--threads", type=positive,
                   help="BLAS threads (default: 1 for batches up to 128, where one is as fast and safer; else all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.batch_size < 2:
        p.error("--batch-size must be at least 2: batch norm needs two examples per channel")
    return args


def config_from(args):
    preset = PRESETS[args.model]
    config = dict(DEFAULTS, **preset, model=args.model)
    overrides = dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr, lr_decay_step=args.lr_decay_step,
                     n_embd=args.n_embd, n_hidden=args.n_hidden, block_size=args.block_size,
                     device=args.device, dtype=args.dtype, seed=args.seed)
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def plot_losses(losses, path, window=1000):
    """Mean of log10(loss) over windows of `window` steps, as in the reference notebook."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    window = max(1, min(window, len(losses) // 10))
    means = [sum(math.log10(max(x, SMALLEST_PLOTTED_LOSS)) for x in losses[i:i + window]) / window
             for i in range(0, len(losses) - window + 1, window)]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([window * (i + 1) for i in range(len(means))], means)
    ax.set_xlabel("step")
    ax.set_ylabel(f"log10 loss, mean of {window} steps")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_log(run, out, final=None, samples=None):
    log = dict(config=run.config, params=count_parameters(run.model), step=run.step,
               train_seconds=round(run.seconds, 2),
               evals=run.evals, final=final, samples=samples, losses=run.losses)
    (out / "log.json").write_text(json.dumps(log))


def start_or_resume(args, checkpoint):
    """(run, words): a new run from the flags, or the run saved in the checkpoint,
    with the data file it was trained on (checked by its sha256)."""
    if not args.resume:
        path = ensure_names(args.data)
        words = load_words(path)
        config = dict(config_from(args), data=str(path.resolve()), data_sha256=sha256_of(path))
        return Run(config, build_vocab(words)), words
    if not checkpoint.is_file():
        raise DataError(f"--resume: there is no checkpoint at {checkpoint}")
    try:
        run = Run.load(checkpoint)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"--resume: {checkpoint} is not a checkpoint of train.py ({e})") from None
    path = ensure_names(args.data or run.config["data"])
    if sha256_of(path) != run.config["data_sha256"]:
        raise DataError(f"--resume: {path} is not the file this run was trained on "
                        f"({run.config['data']}, sha256 {run.config['data_sha256'][:12]}...)")
    if args.steps is not None:
        run.config["steps"] = args.steps
    return run, load_words(path)


def train_until_done(run, splits, args, checkpoint, bar, on_step):
    """Train to config["steps"] with progress, validation and a checkpoint every
    --eval-every steps. Returns False when Ctrl-C stopped it."""
    (Xtr, Ytr), (Xva, Yva), _ = splits
    steps, eval_every = run.config["steps"], args.eval_every
    try:
        while run.step < steps and not run.stop_requested:
            target = min(steps, (run.step // PROGRESS_EVERY + 1) * PROGRESS_EVERY)
            if eval_every:
                target = min(target, (run.step // eval_every + 1) * eval_every)
            run.train(Xtr, Ytr, target, on_step=on_step)
            bar.update(run.step - bar.n)
            bar.set_postfix(loss=f"{run.losses[-1]:.4f}", lr=learning_rate(run.config, run.step - 1), refresh=False)
            if eval_every and run.step % eval_every == 0 and run.step < steps and not run.stop_requested:
                val = run.evaluate(Xva, Yva)
                run.evals.append(dict(step=run.step, split="val", loss=val))
                run.save(checkpoint)
                bar.write(f"step {run.step:7d}: val loss {val:.4f}")
    except KeyboardInterrupt:  # a Ctrl-C outside run.train's handler, or a second one
        run.stop_requested = True
    return not run.stop_requested


def main(argv=None, on_step=None):
    args = parse_args(argv)
    out = Path(args.out or f"runs/{args.model}")
    checkpoint = out / "checkpoint.npz"
    try:
        run, words = start_or_resume(args, checkpoint)
        config = run.config
        splits = [build_dataset(s, config["block_size"], run.itos, config["device"]) for s in split_words(words)]
    except (DataError, ValueError, RuntimeError) as e:  # bad data or flags, no GPU for --device cuda
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.resume and run.step >= config["steps"]:
        print(f"the run in {out} already finished {run.step:,} steps: pass --steps to train it further")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    print(f"{config['model']}: {count_parameters(run.model):,} parameters, {len(splits[0][0]):,} training "
          f"examples, {config['steps']:,} steps of batch {config['batch_size']} on {config['device']} "
          f"in {config['dtype']}" + (f", from step {run.step:,}" if run.step else ""))

    threads = args.threads or backend.default_blas_threads(config["batch_size"])
    with backend.blas_threads(threads), tqdm(total=config["steps"], initial=run.step, unit="step",
                                             disable=args.quiet, dynamic_ncols=True) as bar:
        finished = train_until_done(run, splits, args, checkpoint, bar, on_step)
        if not finished:
            if run.interrupted_mid_step:  # a second Ctrl-C inside a step: its state is half updated
                bar.write(f"stopped inside step {run.step}: not saved; {checkpoint} keeps the last "
                          f"checkpoint (--eval-every)")
            else:
                run.save(checkpoint)
                write_log(run, out)
                bar.write(f"interrupted at step {run.step}: checkpoint saved to {checkpoint}\n"
                          f"resume with: python scripts/train.py --resume --out {out}")
            return INTERRUPTED
        final = {name: run.evaluate(X, Y) for name, (X, Y) in zip(("train", "val", "test"), splits)}
    run.evals += [dict(step=run.step, split=name, loss=loss) for name, loss in final.items()]
    samples = run.sample(args.num_samples)
    run.save(checkpoint)
    write_log(run, out, final, samples)
    if run.losses:
        plot_losses(run.losses, out / "loss.png")
    print(f"train {final['train']:.4f}  val {final['val']:.4f}  test {final['test']:.4f}  "
          f"({run.seconds:.0f} s of training)")
    print("\n".join(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
