"""An exclusive lock on a file, held by its holder's open handle: a holder killed midway holds nothing.

flock on POSIX; the `filelock` library elsewhere (Windows, msvcrt). POSIX keeps the standard library's
call because loading filelock (logging, its settings) cost every checkout and commit hook 40 ms."""

from __future__ import annotations

import contextlib

try:
    import fcntl
except ImportError:   # Windows
    fcntl = None


@contextlib.contextmanager
def exclusive(path: str):
    """Wait for, then hold, the lock on `path` (created if missing) for the with-block."""
    if fcntl is None:
        from filelock import FileLock
        with FileLock(path):
            yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
