"""Argument types the scripts share: each refuses a bad value with a message that
argparse prints as one `error:` line (exit status 2), never a traceback."""
import argparse
import math
import sys


def _number(kind, text):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_int(text):
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def non_negative_int(text):
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def positive_float(text):
    """A finite number > 0 and not denormal (below 2.2e-308 a float has lost its precision)."""
    value = _number(float, text)
    if not (math.isfinite(value) and value >= sys.float_info.min):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text}")
    return value


def non_negative_float(text):
    value = _number(float, text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, not {text}")
    return value


def probability(text):
    value = _number(float, text)
    if not 0 <= value < 1:  # 1 would drop everything: nothing left to learn from
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), not {text}")
    return value


def fail(message):
    """Say what is wrong in one `error:` line on stderr; return the exit status of bad input."""
    print(f"error: {message}", file=sys.stderr)
    return 2
