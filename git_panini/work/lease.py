"""Leases on claimed files: who holds one (host and process), when one has lapsed, renewal and interruption.

A lease is a `processing` note with `lease_until` (UTC) and its holder: `worker`, `host`, `pid`,
`pid_ns` (the process's PID namespace: two containers may share a host name, never a namespace
and a PID), `pid_started` ("<pid>:<create time>", util.liveness.create_time: a process that got the
holder's pid later is not the holder) and `prior`, the status to go back to when the lease is released
rather than finished. `pid_started` names its pid so that a value left behind by a process that did
not write it (git-panini before it, retaking a lapsed lease) is never taken for the new holder's; a
note without it is judged by its pid alone.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from ..util import liveness

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Another machine's clock may run ahead of ours by this much: its lease is taken over only this long
# after it seems to have expired here. A lease of this machine is judged by its own clock alone.
CLOCK_SKEW_SECONDS = 30


# A note under no lease names no holder: a `queued` note keeping a dead process's PID would look lapsed.
NO_HOLDER = {"worker": None, "host": None, "pid": None, "pid_ns": None, "pid_started": None, "prior": None}


class Interrupted(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the worker hands its leases back, then stops."""


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


_started_here: tuple[int, str | None] | None = None   # (pid, pid_started) of this process, once read


def holder() -> dict:
    """The fields that name this process as a lease's holder."""
    global _started_here
    pid = os.getpid()
    if _started_here is None or _started_here[0] != pid:   # read again in a forked child
        started = liveness.create_time(pid)
        _started_here = (pid, None if started is None else f"{pid}:{started}")
    return {"host": socket.gethostname(), "pid": pid, "pid_ns": _pid_namespace(), "pid_started": _started_here[1]}


def held_here(note: dict) -> bool:
    """The lease was taken by a process of this machine (same host name and PID namespace)."""
    here = holder()
    return (note.get("host") == here["host"] and note.get("pid_ns") == here["pid_ns"]
            and isinstance(note.get("pid"), int))


def holder_started(note: dict) -> float | None:
    """The create time recorded for the note's holder, or None: none recorded, or one recorded for
    another pid (a holder that did not write the field left its predecessor's)."""
    pid, sep, started = str(note.get("pid_started") or "").partition(":")
    if not sep or not pid.isdigit() or int(pid) != note.get("pid"):
        return None
    try:
        value = float(started)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def holder_alive(note: dict) -> bool:
    """The local process that holds the lease still runs (liveness.alive: not a zombie, and, when the
    note records its create time, not a later process that got its pid; one we may not inspect counts
    as running, so its lease lapses at its time)."""
    return liveness.alive(note["pid"], holder_started(note))


def lapsed(note: dict, at: datetime, skew: float = CLOCK_SKEW_SECONDS) -> bool:
    """The note's lease no longer protects it: its local holder is gone, or its time (plus the skew
    margin, when another machine set it) has passed. A lease that does not parse protects nothing."""
    until = parse_time(note.get("lease_until"))
    if until is None:
        return True
    if held_here(note):
        return not holder_alive(note) or until < at
    return until + timedelta(seconds=skew) < at


def released(note: dict) -> dict:
    """The note as it was before the lease: its prior claimable state, no holder, attempts unchanged."""
    prior = note.get("prior") if note.get("prior") in ("pending", "queued", "failed") else "pending"
    return dict(note, status=prior, lease_until=None, **NO_HOLDER)


class Renewer:
    """Calls renew() every `interval` seconds on a thread of its own until stopped."""

    def __init__(self, renew, interval: float):
        self._renew, self._interval = renew, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="panini-lease-renewer", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.wait(self._interval):
            self._renew()


@contextmanager
def interruptible():
    """SIGTERM raises Interrupted (SIGINT already raises KeyboardInterrupt) in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def uninterrupted():
    """SIGINT and SIGTERM are ignored while leases are handed back (a second Ctrl-C must not stop that half way)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
