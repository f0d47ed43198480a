"""Stopping a training job cleanly on Ctrl-C (SIGINT) or SIGTERM, whatever it is doing.

A job is a sequence of phases, and a signal is handled by the kind of phase it lands in:
- abortable phases (loading the data, evaluating, sampling) change nothing that gets
  saved, so the signal raises Interrupted at once and the job saves what it has;
- everywhere else (a training step, writing a checkpoint) the signal is only recorded:
  the step or the write finishes, then the job sees `requested` and stops.
A second signal is recorded the same way, so it can never cut a save in half.
The job exits with 128 + the first signal's number, as a shell reports it: 130 or 143.
"""
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# for tests only: "PHASE" or "PHASE:STEP" makes the job print a line and wait there (at or after
# STEP) until a signal comes, so that a test can send one at a known moment
PAUSE_VARIABLE = "TINYGRAD_WAVE_TEST_PAUSE"
PAUSE_SECONDS = 60


class Interrupted(Exception):
    """A signal stopped an abortable phase."""


class StopSignals:
    """While the `with` block runs, SIGINT and SIGTERM stop the job as above."""

    def __init__(self):
        self.received = None  # the first signal's number
        self._abortable = False
        self._previous = {}
        phase, _, step = os.environ.get(PAUSE_VARIABLE, "").partition(":")
        self._pause_at = (phase, int(step or 0)) if phase else None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # the only thread that may set handlers
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def requested(self):
        return self.received is not None

    @property
    def name(self):
        return signal.Signals(self.received).name

    @property
    def exit_status(self):
        return 128 + self.received

    def _handle(self, signum, frame):
        if self.received is None:
            self.received = signum
        if self._abortable:
            self._abortable = False  # one Interrupted per phase
            raise Interrupted(self.name)

    def phase(self, name, step=0):
        """Mark the start of a phase that finishes even when a signal comes."""
        if self._pause_at and self._pause_at[0] == name and step >= self._pause_at[1]:
            self._pause_at = None
            print(f"[{PAUSE_VARIABLE}] paused at {name}, step {step}", file=sys.stderr, flush=True)
            deadline = time.monotonic() + PAUSE_SECONDS
            while not self.requested and time.monotonic() < deadline:
                time.sleep(0.01)

    @contextmanager
    def abortable(self, name, step=0):
        """A phase that a signal stops at once, raising Interrupted (at once, too, if one came before)."""
        self._abortable = True
        try:
            if self.requested:
                raise Interrupted(self.name)
            self.phase(name, step)
            yield
        finally:
            self._abortable = False
