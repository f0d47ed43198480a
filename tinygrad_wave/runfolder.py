"""The --out folder of a training run: checkpoint.npz, best.npz (the state with the best
val loss), log.json and loss.png, and a lock.

Every file is written beside its target and renamed over it (serialization.atomic_write),
so a crash or a kill mid-write leaves the old file whole. The lock keeps a second run
out of the folder while the first is alive. It is the kernel's (flock): it is released
when its process ends, however it ends, so the lock file of a killed run is stale and
the next run simply takes it over.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path

from .serialization import atomic_write, load_meta

try:
    import fcntl
except ImportError:  # Windows has no flock: runs there are not locked
    fcntl = None


class FolderError(Exception):
    """The folder cannot be used; the message says why."""


def prepare_folder(path, flag="--out"):
    """Create a folder if needed and prove that it takes files, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FolderError(f"{flag} {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise FolderError(f"cannot write to {flag} {path}: {e.strerror or e}") from None


class RunFolder:
    def __init__(self, path):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.npz"
        self.best = self.path / "best.npz"
        self.log = self.path / "log.json"
        self.plot = self.path / "loss.png"
        self.lock_file = self.path / ".lock"
        self.made = []  # the folders prepare() created

    def prepare(self):
        """Create the folder and any missing parents, noting which, for remove_if_unused."""
        self.made = [path for path in (self.path, *self.path.parents) if not path.exists()]
        prepare_folder(self.path)

    def remove_if_unused(self):
        """A run refused before it began (bad flags or data, a folder in use) leaves no folder
        behind: remove those prepare() made, deepest first, each only if it is still empty."""
        for path in self.made:
            try:
                path.rmdir()
            except OSError:  # not empty: something else was put there meanwhile
                return

    @contextlib.contextmanager
    def locked(self):
        """Hold the folder's lock inside the block; FolderError, naming the holder's pid, if another run has it."""
        fd = self._acquire() if fcntl else None
        try:
            yield
        finally:
            if fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.lock_file)
                os.close(fd)

    def _acquire(self):
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise FolderError(f"--out {self.path} is in use by another training run (pid {holder}): "
                                  "wait for it to end or stop it, or choose another --out") from None
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.lock_file).st_ino == os.fstat(fd).st_ino:  # not a file its last holder
                    break                                                   # removed as we opened it
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    def saved_step(self):
        """The step of the checkpoint on disk, or None when there is none."""
        return load_meta(self.checkpoint)["step"] if self.checkpoint.is_file() else None

    def read_log(self):
        """log.json as written by write_log, or None when there is none."""
        if not self.log.is_file():
            return None
        try:
            return json.loads(self.log.read_text())
        except ValueError as e:
            raise FolderError(f"{self.log} is damaged ({e}): move it away to go on without its history") from None

    def write_log(self, log):
        """log.json, strict JSON (a NaN would make it unreadable to most parsers: refused)."""
        text = json.dumps(log, allow_nan=False)
        atomic_write(self.log, lambda f: f.write(text.encode()))

    def clear(self):
        """Remove a previous run's files (--overwrite)."""
        for path in (self.checkpoint, self.best, self.log, self.plot):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
