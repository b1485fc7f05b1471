"""Named points inside operations where a test kills this process with SIGKILL, at a moment it chose.

Each durable step calls reached(NAME) right after it ("update-ref": every ref moved by compare-and-swap), and
so do a few moments inside long work ("packing", "segment-packed"). Outside tests none of these variables is set
and a call costs three dict lookups.

    PANINI_CRASH_TRACE=FILE   every point reached is appended to FILE, one "NAME" per line
    PANINI_CRASH_AT=NAME[:N]  SIGKILL at the N-th time (default 1) this process reaches NAME
    PANINI_CRASH_AT=K         SIGKILL at the K-th point this process reaches, whatever its name
    PANINI_STOP_AT=NAME[:N]   SIGSTOP instead: the process hangs there, deaf to SIGTERM, until a SIGKILL

The point is written to the trace before the kill, so a test can assert where each kill landed."""

from __future__ import annotations

import os
import signal
from collections import Counter

_seen: Counter = Counter()


def reached(name: str) -> None:
    trace = os.environ.get("PANINI_CRASH_TRACE")
    at = os.environ.get("PANINI_CRASH_AT")
    stop = os.environ.get("PANINI_STOP_AT")
    if not trace and not at and not stop:
        return
    _seen[name] += 1
    _seen[""] += 1
    if trace:
        fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)
    if at and _due(at, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if stop and _due(stop, name):
        os.kill(os.getpid(), signal.SIGSTOP)


def _due(at: str, name: str) -> bool:
    if at.isdigit():
        return _seen[""] == int(at)
    point, _, nth = at.partition(":")
    return point == name and _seen[name] == int(nth or 1)
