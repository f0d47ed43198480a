"""scripts/train.py with --model wavenet on a small word list: it trains on whole
names, samples from its checkpoint, resumes exactly (momentum included), and
reports losses per character like the other models."""
import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import sample  # noqa: E402
import train  # noqa: E402

from tinygrad_wave.data import build_dataset, build_vocab, load_words, split_words  # noqa: E402
from tinygrad_wave.training import Run  # noqa: E402


@pytest.fixture(scope="module")
def names_file(tmp_path_factory):
    """A few names repeated: a pattern a small model learns in a few hundred steps,
    found in every split."""
    path = tmp_path_factory.mktemp("data") / "names.txt"
    path.write_text("\n".join(["anna", "emma", "ella", "ava", "mia", "isla", "lila", "nora", "zoe", "ivy"] * 20))
    return path


def wavenet_run(words_file, out, steps, *extra):
    """argv of a small WaveNet (receptive field 8, 8 channels, 16 hidden), 16 names a step."""
    return ["--data", str(words_file), "--out", str(out), "--model", "wavenet", "--n-embd", "8",
            "--n-hidden", "16", "--batch-size", "16", "--steps", str(steps), "--lr-decay-step", str(steps),
            "--eval-every", "100", "--num-samples", "6", "--quiet", *extra]


def log_of(out):
    return json.loads((out / "log.json").read_text())


def test_a_wavenet_trains_and_samples_from_its_checkpoint(names_file, tmp_path, capsys):
    """A few hundred steps: the loss falls far below log(vocabulary) (the uniform guess)
    on every split, and sample.py draws names from the checkpoint -- mostly the known ones."""
    assert train.main(wavenet_run(names_file, tmp_path, 300)) == 0
    log = log_of(tmp_path)
    known = set(load_words(names_file))
    uniform = np.log(len(build_vocab(known)))
    assert log["config"]["momentum"] == 0.9 and log["config"]["dropout"] == 0.2
    assert log["losses"][0] > 0.9 * uniform and np.mean(log["losses"][-20:]) < 0.5 * uniform
    assert max(log["final"].values()) < 0.5 * uniform
    capsys.readouterr()
    assert sample.main(["--checkpoint", str(tmp_path / "checkpoint.npz"), "--num", "10", "--seed", "1"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) == 10 and sum(name in known for name in names) >= 6


def test_ctrl_c_then_resume_keeps_the_momentum(words_file, tmp_path):
    """The velocities are in the checkpoint: a run stopped at step 25 and resumed takes
    the unbroken run's steps, bit for bit."""
    assert train.main(wavenet_run(words_file, tmp_path / "whole", 50)) == 0

    def ctrl_c_at_step_25(run):
        if run.step == 25:
            signal.raise_signal(signal.SIGINT)

    broken = tmp_path / "broken"
    assert train.main(wavenet_run(words_file, broken, 50), on_step=ctrl_c_at_step_25) == train.INTERRUPTED
    with np.load(broken / "checkpoint.npz") as f:
        assert sum(name.startswith("optimizer.velocity.") for name in f.files) == len(Run.load(broken / "checkpoint.npz").model.parameters())
    assert train.main(wavenet_run(words_file, broken, 50, "--resume")) == 0
    assert log_of(broken)["losses"] == log_of(tmp_path / "whole")["losses"]
    whole, resumed = (Run.load(d / "checkpoint.npz") for d in (tmp_path / "whole", broken))
    for name, array in whole.model.state_dict().items():
        np.testing.assert_array_equal(array, resumed.model.state_dict()[name], err_msg=name)
    for name, array in whole.optimizer.state_dict().items():
        np.testing.assert_array_equal(array, resumed.optimizer.state_dict()[name], err_msg=name)


def test_wavenet_losses_are_per_character_like_the_other_models(words_file, tmp_path):
    """Run.evaluate on whole names gives the mean loss over build_dataset's examples of the split."""
    assert train.main(wavenet_run(words_file, tmp_path, 20)) == 0
    run = Run.load(tmp_path / "checkpoint.npz")
    val_words = split_words(load_words(words_file))[1]
    X, Y = build_dataset(val_words, 8, run.itos)
    with run._eval_mode():
        logits = run.model(X)[:, -1]  # each context alone, read at its last position
    shifted = logits.numpy() - logits.numpy().max(1, keepdims=True)
    per_example = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(Y)), Y]
    assert run.evaluate(*run.dataset(val_words)) == pytest.approx(per_example.mean(), rel=1e-5)


def run_with(words_file, tmp_path, *flags):
    return train.main(["--data", str(words_file), "--out", str(tmp_path), "--steps", "5", "--quiet", *flags])


@pytest.mark.parametrize("flags, message", [
    (["--model", "hier22k", "--dropout", "0.1"], "dropout applies to the WaveNet presets only"),
    (["--model", "wavenet", "--block-size", "12"], "power of 2"),
], ids=str)
def test_a_bad_wavenet_config_exits_with_a_message(words_file, tmp_path, capsys, flags, message):
    assert run_with(words_file, tmp_path, *flags) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--dropout", "1"], "must be a probability in [0, 1)"),
    (["--momentum", "-0.5"], "must be a finite number, 0 or more"),
    (["--weight-decay", "nan"], "must be a finite number, 0 or more"),
], ids=str)
def test_bad_wavenet_flags_exit_with_a_message(words_file, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        run_with(words_file, tmp_path, "--model", "wavenet", *flags)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_wavenet_trains_on_one_name_a_step_and_says_it_counts_names(words_file, tmp_path, capsys):
    """The WaveNet has no batch norm, so --batch-size 1 is one name a step; its banner counts
    names (and their characters), not examples it never builds."""
    assert train.main(wavenet_run(words_file, tmp_path, 4, "--batch-size", "1")) == 0
    banner = capsys.readouterr().out.splitlines()[0]
    train_words = split_words(load_words(words_file))[0]
    characters = sum(len(w) + 1 for w in train_words)
    assert f"{len(train_words):,} training names ({characters:,} characters)" in banner
    assert "4 steps of 1 whole name on" in banner and "examples" not in banner


def test_the_loss_plot_says_that_dropout_lifts_the_training_curve():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    train.draw_losses(ax, [2.0] * 100, [dict(step=100, split="val", loss=1.9)], window=10, dropout=0.2)
    label = ax.get_legend().get_texts()[0].get_text()
    assert "dropout 0.2 on" in label and "above val" in label


def test_a_name_that_would_blow_up_the_padding_is_refused_up_front(words_file, tmp_path, capsys):
    """The WaveNet pads every name to the longest: one 50,000-character line among 400 names
    would make every split's arrays tens of times the data (and hundreds of MiB): one `error:`
    line before any of it is allocated. A long name that costs little is trained on."""
    costly = tmp_path / "costly.txt"
    costly.write_text(words_file.read_text() + "\n" + "a" * 50_000 + "\n")
    assert train.main(wavenet_run(costly, tmp_path / "costly", 2)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the WaveNet pads every name to the longest, and the longest (50,000 characters")
    assert err.count("\n") == 1 and not (tmp_path / "costly" / "checkpoint.npz").exists()
    harmless = tmp_path / "harmless.txt"
    harmless.write_text(words_file.read_text() + "\n" + "a" * 500 + "\n")
    assert train.main(wavenet_run(harmless, tmp_path / "harmless", 2)) == 0
