"""names.txt and the examples makemore trains on.

Each name "emma" with block_size 3 becomes the examples
    ... -> e,  ..e -> m,  .em -> m,  emm -> a,  mma -> .
where '.' (id 0) pads the start and marks the end of a name.
"""
import hashlib
import random
import re
import urllib.request
from pathlib import Path

from . import backend
from .functional import IGNORE_INDEX  # the target of a position that predicts nothing
from .serialization import atomic_write

NAMES_URL = "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt"
NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "names.txt"
END = "."
MIN_NAMES = 6  # the fewest names whose 80/10/10 split leaves no split empty (5 gives 4/0/1)
# C0 and C1 control characters, NUL, tab, escape and a lone carriage return among them: never part of a name
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


class DataError(Exception):
    """The data cannot be used; the message says why and what to do."""


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ensure_names(path=None, url=NAMES_URL, default=DEFAULT_PATH):
    """The path of names.txt: `path` when given; else data/names.txt, which is
    downloaded from the makemore repository (and its checksum verified) when missing."""
    if path is not None:
        if not Path(path).is_file():
            raise DataError(f"no data file at {path}")
        return Path(path)
    default = Path(default)
    if default.is_file():
        digest = sha256_of(default)
        if digest != NAMES_SHA256:
            raise DataError(f"{default} has sha256 {digest}, not makemore's {NAMES_SHA256}: restore it "
                            "(git checkout data/names.txt) or pass your own file with --data PATH")
        return default
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            content = response.read()
    except OSError as e:
        raise DataError(f"names.txt is not in {default.parent} and could not be downloaded from {url} "
                        f"({e}). Download it yourself and pass its path with --data PATH") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != NAMES_SHA256:
        raise DataError(f"the file downloaded from {url} has sha256 {digest}, not {NAMES_SHA256}; "
                        "refusing to use it. Pass a good copy with --data PATH")
    default.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(default, lambda f: f.write(content))  # never a half-written names.txt
    return default


def load_words(path):
    """The names in a UTF-8 file, one a line: a byte-order mark, blank lines and
    spaces around a name are skipped; control characters are refused."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path} is not UTF-8 text (line {line}: {e.reason}); save it as UTF-8") from None
    control = CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise DataError(f"{path}, line {line}: the control character {control.group()!r} cannot be part of "
                        "a name (one name a line, letters only)")
    words = [w for w in (line.strip() for line in text.split("\n")) if w]
    if not words:
        raise DataError(f"{path} holds no names")
    for word in words:
        if END in word:
            raise DataError(f"{path}: the name {word!r} contains {END!r}, which marks the end of a name")
    return words


def build_vocab(words):
    """itos: '.' at id 0, then the characters of the data in sorted order."""
    return END + "".join(sorted(set("".join(words))))


def split_words(words, seed=42):
    """Shuffle as makemore does (random.seed(42); random.shuffle(words)), then 80/10/10."""
    words = list(words)
    random.Random(seed).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    if n1 == n2 or n2 == len(words):
        raise DataError(f"{len(words)} names are too few for an 80/10/10 split: give at least {MIN_NAMES}")
    return words[:n1], words[n1:n2], words[n2:]


def build_dataset(words, block_size, itos, device="cpu"):
    """X: (N, block_size) contexts of character ids, Y: (N,) the next character."""
    stoi = {ch: i for i, ch in enumerate(itos)}
    contexts, targets = [], []
    for word in words:
        context = [0] * block_size
        for ch in word + END:
            if ch not in stoi:
                raise DataError(f"the name {word!r} has the character {ch!r}, which is not in the "
                                f"model's vocabulary {itos!r}")
            contexts.append(context)
            targets.append(stoi[ch])
            context = context[1:] + [stoi[ch]]
    X = backend.to_array(contexts, "int64", device).reshape(len(contexts), block_size)
    return X, backend.to_array(targets, "int64", device)


# build_sequences pads every name to the longest: it refuses a longest name that would make its
# arrays more than PADDING_LIMIT times the positions the names fill, once they pass PADDING_FLOOR
# cells (16 MiB for X and Y), so that memory grows with the characters in the data
PADDING_LIMIT = 10
PADDING_FLOOR = 2 ** 20


def check_padding(words, block_size):
    """DataError, before anything is allocated, when padding to the longest name would blow memory up."""
    longest = max(words, key=len)
    cells = len(words) * (block_size + len(longest))
    filled = sum(block_size + len(w) for w in words)
    if cells > max(PADDING_LIMIT * filled, PADDING_FLOOR):
        shown = longest if len(longest) <= 20 else longest[:20] + "..."
        raise DataError(f"the WaveNet pads every name to the longest, and the longest ({len(longest):,} characters: "
                        f"{shown!r}) would make its arrays {cells / filled:.0f} times the data "
                        f"({cells * 16 / 2 ** 20:,.0f} MiB): remove that line, or train a part 5 model "
                        "(--model hier76k), which does not pad")


def build_sequences(words, block_size, itos, device="cpu"):
    """Whole names for a model that predicts at every position (the WaveNet).

    Row w of X is block_size '.' ids, then the name, then 0s up to the longest
    name; Y[w, p] is the character after position p, for p from block_size - 1
    (the first, all-'.' context) to the name's last character (target '.'), and
    IGNORE_INDEX elsewhere. So position p with Y[w, p] != IGNORE_INDEX has the context
    X[w, p - block_size + 1 : p + 1] and the target that build_dataset gives."""
    check_padding(words, block_size)
    stoi = {ch: i for i, ch in enumerate(itos)}
    width = block_size + max(len(w) for w in words)
    X = [[0] * width for _ in words]
    Y = [[IGNORE_INDEX] * width for _ in words]
    for row, word in enumerate(words):
        ids = _ids(word, stoi, itos)
        X[row][block_size:block_size + len(ids)] = ids
        Y[row][block_size - 1:block_size + len(ids)] = ids + [0]
    return backend.to_array(X, "int64", device), backend.to_array(Y, "int64", device)


def _ids(word, stoi, itos):
    for ch in word:
        if ch not in stoi:
            raise DataError(f"the name {word!r} has the character {ch!r}, which is not in the "
                            f"model's vocabulary {itos!r}")
    return [stoi[ch] for ch in word]


def pack(X, Y, ix, block_size):
    """The names at rows `ix` of build_sequences' (X, Y), laid end to end in one
    row with their padding dropped: inputs (1, n) and targets (n,). Each name
    keeps its block_size '.' prefix, so the first character of every name is
    predicted from block_size '.'s, exactly as build_dataset does; the prefix
    positions that see the name before (or zeros) have the target IGNORE_INDEX."""
    xp = backend.namespace(backend.device_of(X))
    rows_X, rows_Y = X[ix], Y[ix]
    lengths = block_size - 1 + (rows_Y != IGNORE_INDEX).sum(axis=1)  # the prefix, the name, nothing after
    kept = xp.arange(X.shape[1]) < lengths[:, None]
    return rows_X[kept].reshape(1, -1), rows_Y[kept]
