"""The names data: download and checksum, vocabulary, split and examples, bad data."""
import random
import re

import pytest

from tinygrad_wave import data
from tinygrad_wave.data import (MIN_NAMES, DataError, build_dataset, build_vocab, ensure_names, load_words,
                                split_words)


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


def test_download_verifies_and_stores_the_real_file(tmp_path):
    target = tmp_path / "data" / "names.txt"
    assert ensure_names(url=data.DEFAULT_PATH.as_uri(), default=target) == target
    assert data.sha256_of(target) == data.NAMES_SHA256


def test_names_txt_gives_the_reference_example_counts():
    words = load_words(ensure_names())
    assert len(words) == 32033
    itos = build_vocab(words)
    assert itos == ".abcdefghijklmnopqrstuvwxyz"
    sizes = [build_dataset(split, 8, itos)[0].shape for split in split_words(words)]
    assert sizes == [(182625, 8), (22655, 8), (22866, 8)]


def test_names_txt_is_committed_and_checked_at_load(tmp_path):
    """The default data is in the repository (no network needed), and a changed copy is refused."""
    assert ensure_names() == data.DEFAULT_PATH and data.sha256_of(data.DEFAULT_PATH) == data.NAMES_SHA256
    edited = tmp_path / "names.txt"
    edited.write_bytes(data.DEFAULT_PATH.read_bytes() + b"zed\n")
    with pytest.raises(DataError, match="git checkout data/names.txt"):
        ensure_names(default=edited)


def test_a_byte_order_mark_is_stripped(tmp_path):
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfanna\r\nbob\r\n")  # as Windows Notepad saves it
    assert load_words(f) == ["anna", "bob"]


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("anna\nbob\nzoë\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(line 3"):
        load_words(f)


@pytest.mark.parametrize("char", ["\x00", "\t", "\x1b", "\r", "\x85"])
def test_control_characters_are_refused_with_the_line(tmp_path, char):
    f = tmp_path / "control.txt"
    f.write_text(f"anna\nbob\nca{char}rl\nzoe\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"control.txt, line 3: the control character {re.escape(repr(char))}"):
        load_words(f)


def test_the_fewest_names_message_states_the_real_minimum():
    with pytest.raises(DataError, match=f"give at least {MIN_NAMES}"):
        split_words([f"n{i}" for i in range(MIN_NAMES - 1)])
    for n in range(MIN_NAMES, 500):  # from the stated minimum up, no split is ever empty
        assert all(split_words([f"n{i}" for i in range(n)])), n
