"""torch's CPU random numbers, number for number: a Generator and the draws the
lectures make (rand, randn, randint, multinomial), so that a seed gives the
weights, batches and sampled names a learner sees in the lecture's notebook.

torch's CPU generator is a Mersenne Twister (std::mt19937) seeded with the low
32 bits of the seed; mersenne_twister below gives NumPy's, which makes the same
32-bit words. Each draw turns words into numbers the way torch's CPU kernels do:

- uniform, float32: the low 24 bits of one word / 2**24; float64: the low 53 bits
  of a 64-bit number made of two words (the first one high) / 2**53.
- randint(low, high): word % (high - low) + low (a 64-bit number, two words, for ranges
  of 2**28 or more).
- randn of 16 or more numbers: uniforms in blocks of 16 and Box-Muller inside each
  block, in the tensor's dtype: the first 8 give radii sqrt(-2 log(1 - u)), the
  last 8 angles 2 pi u; cos fills the first half, sin the second. When the length
  is not a multiple of 16 the last 16 numbers are drawn again as a block of their own.
  float16: the float32 numbers rounded (uniforms too), except that the tail's first
  uniforms are not drawn before its block.
- randn of fewer than 16: one Box-Muller pair per two numbers from float64 uniforms
  (angle from the first, radius sqrt(-2 log(1 - u)) from the second); the spare sin
  is kept for the next small draw, as torch keeps it (manual_seed drops it).
- randperm(n), n below 2**32 // 20: 0..n-1 in order, then for i = 0..n-2 element i
  swaps with element i + word % (n - i), one word per step (a Fisher-Yates shuffle).
- multinomial, one sample or without replacement: the Gumbel trick, argmax (or top
  k) of p / q with q = -log(1 - u) ~ Exp(1), one float64 uniform per category (so
  categories of probability 0 come last, once the others are drawn; torch's order
  among them is its top-k's, here their index order);
  with replacement: a float64 uniform per sample looked up in the normalised
  cumulative sum of p (the first category whose cumulative value reaches it).

randn of float32 agrees with torch to within 2 ulp rather than exactly: torch's
x86 build computes the blocks' log, cos and sin with AVX2 approximations (and so
float16's, rounded from them, to within 1 ulp).
Everything else, and all integer results, are exact.
"""
import math
import numbers
import operator
import os

from . import backend, watch
from .methods import _shape
from .tensor import Tensor

DEFAULT_SEED = 67280421310721  # torch's default CPU generator starts from this seed
WIDE_RANGE = 2 ** 28  # randint over a range this wide or wider takes 64 bits per number, as torch 2.13's CPU kernel
host = backend.namespace("cpu")  # draws are made on the host, then sent to the tensor's device


# --- the Mersenne Twister: NumPy's, holding torch's state -----------------------------

def mersenne_twister(seed):
    """NumPy's MT19937 seeded as C++'s std::mt19937 and torch's CPU generator seed
    theirs (the low 32 bits of `seed` spread over 624 words by init_genrand;
    RandomState's legacy seeding does exactly that), so its raw stream of 32-bit
    words is torch's. The draws below turn the words into torch's numbers."""
    words = host.random.RandomState(seed & 0xFFFFFFFF).get_state()[1]
    return twister_from_state(words, 624)


def twister_from_state(words, position):
    """An MT19937 at a saved state: its 624 words and how many of them are used up."""
    bits = host.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": host.asarray(words, dtype=host.uint32),
                                                       "pos": int(position)}}
    return bits


def twister_state(bits):
    """(words as a list of ints, position): what twister_from_state takes back."""
    state = bits.state["state"]
    return state["key"].tolist(), int(state["pos"])


class Generator:
    """torch.Generator for the CPU: `g = Generator().manual_seed(2147483647)`."""

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator(device={device!r}): only CPU generators exist here; a CUDA "
                             "tensor's random numbers are drawn on the host from a CPU generator and sent")
        self.device = "cpu"
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        """Reseed; returns the generator. As torch's Generator.manual_seed: a Python int in
        [-2**63, 2**64), kept as its 64 bits (initial_seed() of -1 is 2**64 - 1)."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            integral = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)  # numpy's ints
            raise (TypeError if integral else RuntimeError)(
                f"manual_seed expected a long, but got {type(seed).__name__}: pass int(seed)")
        if not -2 ** 63 <= seed < 2 ** 64:
            raise ValueError(f"manual_seed: {seed} overflows 64 bits (Overflow when unpacking long long)")
        self._seed = seed & (2 ** 64 - 1)
        self._twister = mersenne_twister(seed)
        self._spare_normal = None
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        """Reseed from the operating system's randomness, as torch's Generator.seed(); returns the seed."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    # --- state: torch's get_state/set_state, and a JSON form for checkpoints -------------

    def state_dict(self):
        """The whole state as JSON-ready values: seed, the twister's words and position,
        and the spare normal number a small randn keeps."""
        words, position = twister_state(self._twister)
        return {"seed": self._seed, "words": words, "position": position, "spare_normal": self._spare_normal}

    def load_state_dict(self, state):
        check_state(state)
        self._seed, self._spare_normal = state["seed"], state["spare_normal"]
        self._twister = twister_from_state(state["words"], state["position"])

    def get_state(self):
        """The state as a uint8 tensor, as torch gives it (its bytes are not torch's)."""
        words, position = twister_state(self._twister)
        spare = math.nan if self._spare_normal is None else self._spare_normal
        packed = host.concatenate([host.asarray(words + [position], dtype="uint32").view("uint8"),
                                   host.asarray([self._seed], dtype="uint64").view("uint8"),
                                   host.asarray([spare]).view("uint8")])
        return Tensor(packed)

    def set_state(self, state):
        packed = state.numpy() if isinstance(state, Tensor) else state
        if packed.dtype != host.uint8 or packed.shape != (625 * 4 + 16,):
            raise ValueError(f"set_state expects the uint8 tensor get_state gives ({625 * 4 + 16} bytes)")
        words = packed[:2500].view("uint32").tolist()
        seed, spare = int(packed[2500:2508].view("uint64")[0]), float(packed[2508:].view("float64")[0])
        self.load_state_dict({"seed": seed, "words": words[:624], "position": words[624],
                              "spare_normal": None if math.isnan(spare) else spare})

    # --- words and uniforms ----------------------------------------------------------------

    def _words(self, n):
        """n 32-bit words (in a uint64 array): every draw comes through here, and tells the
        watcher (a replay of a captured step would not draw them again)."""
        watch.randomness_drawn("a random draw from a Generator")
        return self._twister.random_raw(n)

    def _words64(self, n):
        words = self._words(2 * n)
        return (words[0::2] << host.uint64(32)) | words[1::2]

    def _uniform(self, n, dtype):
        """n uniforms in [0, 1) of `dtype`, from 24 (float32, and float16 rounded from it) or 53
        (float64) random bits."""
        if dtype == host.float64:
            return (self._words64(n) & host.uint64(2 ** 53 - 1)).astype(host.float64) * 2.0 ** -53
        u = (self._words(n) & host.uint64(0xFFFFFF)).astype(host.float32) * host.float32(2.0 ** -24)
        return u.astype(dtype, copy=False)

    def _normal(self, n, dtype):
        if n >= 16:
            working = host.float32 if dtype == host.float16 else dtype  # float16: float32's numbers, rounded
            values = _box_muller_blocks(self._uniform(n - n % 16, working))
            if n % 16:
                if dtype != host.float16:  # torch fills the tail with uniforms first (its float16 kernel does not)
                    self._uniform(n % 16, working)
                values = host.concatenate([values[:n - 16], _box_muller_blocks(self._uniform(16, working))])
            return values.astype(dtype, copy=False)
        head = [] if self._spare_normal is None or n == 0 else [self._spare_normal]
        fresh = n - len(head)
        pairs = (fresh + 1) // 2
        u = self._uniform(2 * pairs, host.float64).reshape(pairs, 2)
        radius, angle = host.sqrt(-2.0 * host.log1p(-u[:, 1])), 2.0 * math.pi * u[:, 0]
        values = host.stack([radius * host.cos(angle), radius * host.sin(angle)], axis=1).reshape(-1)
        if head or fresh:
            self._spare_normal = float(values[fresh]) if fresh % 2 else None
        return host.concatenate([host.asarray(head, dtype=host.float64), values[:fresh]]).astype(dtype)


def check_state(state):
    """Raise ValueError, naming the field, unless `state` is one Generator.state_dict() could give
    (a state from a file must not send the twister past its 624 words)."""
    def is_int(value, low, high):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value < high
    if not isinstance(state, dict) or set(state) != {"seed", "words", "position", "spare_normal"}:
        raise ValueError("not the state of a tinygrad_wave Generator (since torch's random streams, "
                         "a state is a dict of seed, words, position and spare_normal)")
    if not is_int(state["seed"], 0, 2 ** 64):
        raise ValueError(f"generator state: seed must be an int in [0, 2**64), not {state['seed']!r}")
    words = state["words"]
    if not (isinstance(words, list) and len(words) == 624 and all(is_int(w, 0, 2 ** 32) for w in words)):
        raise ValueError("generator state: words must be a list of 624 ints in [0, 2**32)")
    if not is_int(state["position"], 0, 625):
        raise ValueError(f"generator state: position must be an int in [0, 624], not {state['position']!r}")
    spare = state["spare_normal"]
    if spare is not None and not (isinstance(spare, (int, float)) and not isinstance(spare, bool)
                                  and math.isfinite(spare)):
        raise ValueError(f"generator state: spare_normal must be None or a finite number, not {spare!r}")


def _box_muller_blocks(u):
    """Standard normals from uniforms in blocks of 16 (see the module's docstring)."""
    u = u.reshape(-1, 16)
    radius = host.sqrt(-2 * host.log(1 - u[:, :8]))
    angle = u.dtype.type(2 * math.pi) * u[:, 8:]
    return host.concatenate([radius * host.cos(angle), radius * host.sin(angle)], axis=1).reshape(-1)


default_generator = Generator()


def manual_seed(seed):
    """Reseed the global generator (the one every draw without `generator=` uses); returns it.
    As torch.manual_seed, any seed int() takes (numpy's integers, 3.0)."""
    return default_generator.manual_seed(int(seed))


def initial_seed():
    return default_generator.initial_seed()


def seed():
    """Reseed the global generator from the operating system's randomness; returns the seed."""
    return default_generator.seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


# --- the draws ---------------------------------------------------------------------------

def _float_dtype(dtype, what):
    dtype = backend.as_dtype(dtype) or host.dtype(backend.DEFAULT_FLOAT)
    if dtype not in (host.float16, host.float32, host.float64):
        raise TypeError(f"{what} makes float16, float32 or float64 numbers, not {dtype}")
    return dtype


def _generator(generator):
    generator = default_generator if generator is None else generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator= expects a tinygrad_wave Generator, got {type(generator).__name__}")
    return generator


def _drawn(values, shape, device, requires_grad):
    return Tensor(backend.to_array(values.reshape(shape), device=device), requires_grad, device=device)


def _size(sizes, size, what):
    """The shape of a draw, as torch takes it: rand(2, 3), rand((2, 3)) or rand(size=(2, 3)),
    each size an int (or a one-element integer tensor), none negative."""
    if size is not None:
        if sizes:
            raise TypeError(f"{what}() takes the size once: as arguments or as size=, not both")
        sizes = (size,)
    shape = _shape(sizes)
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"{what}(): the size must be ints, or one tuple of ints, not {shape!r}") from None
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{what}(): trying to create tensor with negative dimension {min(shape)}: {list(shape)}")
    return shape


def rand(*sizes, size=None, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Uniform numbers in [0, 1), as torch.rand."""
    shape, dtype = _size(sizes, size, "rand"), _float_dtype(dtype, "rand")
    return _drawn(_generator(generator)._uniform(math.prod(shape), dtype), shape, device, requires_grad)


def randn(*sizes, size=None, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Standard normal numbers, as torch.randn. `generator` may also be a
    numpy.random.Generator (its standard_normal numbers, not torch's)."""
    shape, dtype = _size(sizes, size, "randn"), _float_dtype(dtype, "randn")
    if isinstance(generator, host.random.Generator):
        watch.randomness_drawn("randn from a numpy.random.Generator")
        return _drawn(generator.standard_normal(shape).astype(dtype), shape, device, requires_grad)
    return _drawn(_generator(generator)._normal(math.prod(shape), dtype), shape, device, requires_grad)


def randint(*args, low=None, high=None, size=None, generator=None, dtype=None, device="cpu",
            requires_grad=False):
    """Integers in [low, high), as torch.randint: randint(high, size) or randint(low, high, size),
    each also by keyword (low 0 when not given)."""
    args = list(args)
    size = args.pop() if size is None and args else size
    high = args.pop() if high is None and args else high
    if low is None:
        low = args.pop() if args else 0
    if args or high is None or not isinstance(size, (tuple, list)):
        raise TypeError("randint takes (high, size) or (low, high, size), size a tuple such as (32,)")
    low, high = int(low), int(high)
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be below high ({high})")
    shape, span, g = _size((), size, "randint"), high - low, _generator(generator)
    n = math.prod(shape)
    words = g._words(n) if span < WIDE_RANGE else g._words64(n)
    values = (words % host.uint64(span)).astype(host.int64) + low
    return _drawn(values.astype(backend.as_dtype(dtype) or host.int64), shape, device, requires_grad)


RANDPERM_LIMIT = (2 ** 32 - 1) // 20  # from this n on torch shuffles another way, not written here


def randperm(n, *, generator=None, dtype=None, device="cpu", requires_grad=False):
    """0..n-1 in a random order, as torch.randperm on the CPU (see the module's docstring)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"randperm(): n must be an int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"randperm(): n must be non-negative, got {n}")
    if n >= RANDPERM_LIMIT:
        raise ValueError(f"randperm({n}): torch draws a permutation of {RANDPERM_LIMIT} or more numbers "
                         "with another algorithm, which tinygrad_wave does not have")
    dtype = backend.as_dtype(dtype) or host.dtype(host.int64)
    _check_fits(n, dtype)
    g = _generator(generator)
    steps = host.arange(n - 1, dtype=host.uint64)
    offsets = (g._words(n - 1) % (host.uint64(n) - steps)).astype(host.int64) if n > 1 else steps
    order = list(range(n))
    for i, offset in enumerate(offsets.tolist()):  # each swap reads the last: a loop, not an array op
        j = i + offset
        order[i], order[j] = order[j], order[i]
    return _drawn(host.asarray(order, dtype=dtype), (n,), device, requires_grad)


def _check_fits(n, dtype):
    """torch's checks: n - 1 must be an integer of `dtype`, and a float dtype must hold every
    integer up to n exactly."""
    if dtype.kind not in "iuf":
        raise TypeError(f"randperm makes integers or floats, not {dtype}")
    if dtype.kind in "iu" and n - 1 > host.iinfo(dtype).max:
        raise RuntimeError(f"randperm({n}): {n - 1} cannot be converted to {dtype} without overflow")
    if dtype.kind == "f" and n > 2 ** (host.finfo(dtype).nmant + 1) + 1:
        raise RuntimeError(f"randperm({n}): n cannot be greater than 2^{host.finfo(dtype).nmant + 1}+1 "
                           f"for {dtype}")


def uniform_values(n, low, high, dtype, generator=None):
    """n numbers in [low, high) of `dtype` (float32 or float64) on the host, as torch's
    Tensor.uniform_ makes them: u * (high - low) + low in float64, u a uniform of 24
    (float32) or 53 random bits, high - low taken in the tensor's dtype; then rounded
    to the dtype. nn.init draws through here."""
    low, high = dtype.type(low), dtype.type(high)
    u = _generator(generator)._uniform(n, dtype).astype(host.float64)  # (24 bits: exact in float32)
    return (u * host.float64(high - low) + host.float64(low)).astype(dtype)


def normal_values(n, mean, std, dtype, generator=None):
    """n normal numbers of `dtype` on the host, as torch's Tensor.normal_(mean, std): randn's
    numbers scaled by std and shifted by mean. nn.init draws through here."""
    return _generator(generator)._normal(n, dtype) * dtype.type(std) + dtype.type(mean)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Category indices drawn with probabilities proportional to the rows of `input`
    (1-D, or 2-D: one row of draws per row), as torch.multinomial."""
    p = input.numpy()
    if p.ndim not in (1, 2) or p.dtype.kind != "f":
        raise ValueError(f"multinomial expects a 1-D or 2-D float tensor of probabilities, got {p.ndim}-D {p.dtype}")
    if not host.all(host.isfinite(p) & (p >= 0)):
        raise ValueError("multinomial: the probabilities hold inf, nan or a number below 0")
    if host.any(p.sum(axis=-1) <= 0):
        raise ValueError("multinomial: a row of probabilities sums to 0 (nothing to draw)")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    if not replacement and num_samples > p.shape[-1]:
        raise ValueError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                         f"({num_samples} from {p.shape[-1]} categories)")
    g = _generator(generator)
    rows = p.reshape(-1, p.shape[-1])
    if not replacement or num_samples == 1:
        q = -host.log1p(-g._uniform(rows.size, host.float64)).astype(p.dtype).reshape(rows.shape)
        ratio = rows / q
        picked = host.argsort(-ratio, axis=-1, kind="stable")[:, :num_samples]
    else:
        picked = host.empty((rows.shape[0], num_samples), dtype=host.int64)
        for i, row in enumerate(rows):
            cumulative = host.cumsum(row, dtype=row.dtype)
            cumulative /= cumulative[-1]
            cumulative[-1] = 1
            picked[i] = host.searchsorted(cumulative, g._uniform(num_samples, host.float64), side="left")
    return _drawn(picked.astype(host.int64), p.shape[:-1] + (num_samples,), input.device, False)
