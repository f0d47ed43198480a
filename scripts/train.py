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
from pathlib import Path

from tqdm import tqdm

from tinygrad_wave import backend
from tinygrad_wave.data import DataError, build_dataset, build_vocab, ensure_names, load_words, split_words
from tinygrad_wave.models import PRESETS, count_parameters
from tinygrad_wave.training import DEFAULTS, Run, learning_rate

PROGRESS_EVERY = 100  # steps between progress-bar updates
INTERRUPTED = 130     # the exit status of a program stopped by Ctrl-C


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=PRESETS, default=DEFAULTS["model"],
                   help="a row of makemore part 5's log: mlp3 (12K params, 3-char context), flat8 (22K, "
                        "8-char flat MLP), hier22k (22K, hierarchical), hier76k (76K, the default)")
    p.add_argument("--data", help="path of names.txt (default: data/names.txt, downloaded when missing)")
    p.add_argument("--steps", type=int, help=f"total SGD steps (default {DEFAULTS['steps']})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="examples per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="learning rate (default %(default)s)")
    p.add_argument("--lr-decay-step", type=int, default=DEFAULTS["lr_decay_step"],
                   help="from this step on the learning rate is lr/10 (default %(default)s)")
    p.add_argument("--n-embd", type=int, help="embedding size (default: the preset's)")
    p.add_argument("--n-hidden", type=int, help="hidden units per layer (default: the preset's)")
    p.add_argument("--block-size", type=int, help="characters of context (default: the preset's)")
    p.add_argument("--device", choices=backend.DEVICES, default="cpu", help="cpu (NumPy) or cuda (CuPy)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=DEFAULTS["dtype"], help="default %(default)s")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of weights and batches (default %(default)s)")
    p.add_argument("--out", help="folder for checkpoint.npz, log.json and loss.png (default runs/MODEL)")
    p.add_argument("--eval-every", type=int, default=10_000,
                   help="every N steps: val loss and a checkpoint; 0 for never (default %(default)s)")
    p.add_argument("--num-samples", type=int, default=20, help="names to sample at the end (default %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz; its settings win, except --steps, which may extend it")
    p.add_argument("--threads", type=int,
                   help="BLAS threads (default: 1 for batches up to 128, where one is as fast and safer; else all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


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
    means = [sum(math.log10(x) for x in losses[i:i + window]) / window
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


def main(argv=None, on_step=None):
    args = parse_args(argv)
    out = Path(args.out or f"runs/{args.model}")
    checkpoint = out / "checkpoint.npz"
    try:
        words = load_words(ensure_names(args.data))
        if args.resume:
            if not checkpoint.is_file():
                raise DataError(f"--resume: there is no checkpoint at {checkpoint}")
            run = Run.load(checkpoint)
            if args.steps is not None:
                run.config["steps"] = args.steps
            print(f"resuming {run.config['model']} from step {run.step} of {checkpoint}")
        else:
            run = Run(config_from(args), build_vocab(words))
        config = run.config
        splits = [build_dataset(s, config["block_size"], run.itos) for s in split_words(words)]
    except (DataError, ValueError, RuntimeError) as e:  # bad data or flags, no GPU for --device cuda
        print(f"error: {e}", file=sys.stderr)
        return 2
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = splits
    out.mkdir(parents=True, exist_ok=True)
    print(f"{config['model']}: {count_parameters(run.model):,} parameters, {len(Xtr):,} training examples, "
          f"{config['steps']:,} steps of batch {config['batch_size']} on {config['device']} in {config['dtype']}")

    threads = args.threads or backend.default_blas_threads(config["batch_size"])
    eval_every = args.eval_every
    with backend.blas_threads(threads), tqdm(total=config["steps"], initial=run.step, unit="step",
                                             disable=args.quiet, dynamic_ncols=True) as bar:
        try:
            while run.step < config["steps"] and not run.stop_requested:
                target = min(config["steps"], (run.step // PROGRESS_EVERY + 1) * PROGRESS_EVERY)
                if eval_every:
                    target = min(target, (run.step // eval_every + 1) * eval_every)
                run.train(Xtr, Ytr, target, on_step=on_step)
                bar.update(run.step - bar.n)
                bar.set_postfix(loss=f"{run.losses[-1]:.4f}", lr=learning_rate(config, run.step - 1), refresh=False)
                if eval_every and run.step % eval_every == 0 and not run.stop_requested:
                    val = run.evaluate(Xva, Yva)
                    run.evals.append(dict(step=run.step, split="val", loss=val))
                    run.save(checkpoint)
                    bar.write(f"step {run.step:7d}: val loss {val:.4f}")
        except KeyboardInterrupt:  # Ctrl-C between two calls of run.train: no step was in progress
            run.stop_requested = True

        if run.stop_requested:
            run.save(checkpoint)
            write_log(run, out)
            bar.write(f"interrupted at step {run.step}: checkpoint saved to {checkpoint}\n"
                      f"resume with: python scripts/train.py --resume --out {out}")
            return INTERRUPTED

        final = {name: run.evaluate(X, Y) for name, X, Y in
                 (("train", Xtr, Ytr), ("val", Xva, Yva), ("test", Xte, Yte))}
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
