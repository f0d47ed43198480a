"""The names data: download and checksum, vocabulary, split and examples, bad data."""
import random

import pytest

from tinygrad_wave import data
from tinygrad_wave.data import DataError, build_dataset, build_vocab, ensure_names, load_words, split_words


def test_examples_of_one_name():
    # "emma" with 3 characters of context: five examples, the last predicting the end '.'
    itos = build_vocab(["emma"])
    assert itos == ".aem"
    X, Y = build_dataset(["emma"], 3, itos)
    decode = lambda ids: "".join(itos[i] for i in ids)
    assert [decode(x) for x in X.tolist()] == ["...", "..e", ".em", "emm", "mma"]
    assert decode(Y.tolist()) == "emma."
    assert X.dtype == "int64" and Y.dtype == "int64"


def test_split_is_makemores_shuffle_then_80_10_10():
    words = [f"name{i}" for i in range(101)]
    expected = list(words)
    random.seed(42)
    random.shuffle(expected)
    train, val, test = split_words(words)
    assert train + val + test == expected
    assert (len(train), len(val), len(test)) == (80, 10, 11)
    assert words == [f"name{i}" for i in range(101)]  # the caller's list is not shuffled


def test_bad_data_gets_a_clear_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no names"):
        load_words(empty)
    dotted = tmp_path / "dotted.txt"
    dotted.write_text("anna\nmr.x\n")
    with pytest.raises(DataError, match="'.'"):
        load_words(dotted)
    with pytest.raises(DataError, match="'z'.*not in the model's vocabulary"):
        build_dataset(["zoe"], 3, build_vocab(["oe"]))
    with pytest.raises(DataError, match="no data file"):
        ensure_names(tmp_path / "missing.txt")


def test_blank_lines_and_whitespace_are_skipped(tmp_path):
    f = tmp_path / "w.txt"
    f.write_text("anna\n\n  bob \n")
    assert load_words(f) == ["anna", "bob"]


def test_failed_download_says_how_to_pass_a_path(tmp_path):
    target = tmp_path / "data" / "names.txt"
    with pytest.raises(DataError, match="--data PATH"):
        ensure_names(url=(tmp_path / "nowhere.txt").as_uri(), default=target)
    assert not target.exists()


def test_download_with_a_wrong_checksum_is_refused(tmp_path):
    fake = tmp_path / "fake.txt"
    fake.write_text("emma\nolivia\n")
    target = tmp_path / "data" / "names.txt"
    with pytest.raises(DataError, match="sha256"):
        ensure_names(url=fake.as_uri(), default=target)
    assert not target.exists()


needs_names = pytest.mark.skipif(not data.DEFAULT_PATH.is_file(), reason="data/names.txt is not here")


@needs_names
def test_download_verifies_and_stores_the_real_file(tmp_path):
    target = tmp_path / "data" / "names.txt"
    assert ensure_names(url=data.DEFAULT_PATH.as_uri(), default=target) == target
    assert data.sha256_of(target) == data.NAMES_SHA256


@needs_names
def test_names_txt_gives_the_reference_example_counts():
    words = load_words(ensure_names())
    assert len(words) == 32033
    itos = build_vocab(words)
    assert itos == ".abcdefghijklmnopqrstuvwxyz"
    sizes = [build_dataset(split, 8, itos)[0].shape for split in split_words(words)]
    assert sizes == [(182625, 8), (22655, 8), (22866, 8)]
