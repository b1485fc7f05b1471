"""The polling worker (`git panini work --watch`): round after round, fetch, claim, work, push, sleep.

A machine with no public URL (a notebook, a workstation behind NAT) works a repository's queue this
way: each round is one `Worker.run` (it fetches the remote's notes and store, claims pending files
under leases, packs them, pushes with the usual compare-and-swap, and goes on until nothing is
claimable), then the watcher sleeps. A round that fails (the remote unreachable, say) is one line
and the next round tries again; an interruption hands the leases back (Worker.run) and ends the watch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..util import logs
from .lease import interruptible
from .result import WorkResult, note_error


@dataclass
class Round:
    """What one round did."""
    number: int
    files: int = 0
    failed: int = 0
    packed_bytes: int = 0      # bytes of chunks packed
    stored_bytes: int = 0      # their encoded size
    seconds: float = 0.0       # wall time of the round (fetch, claim, pack, push)
    error: str | None = None   # the round failed: why, in one line

    @property
    def bytes_per_second(self) -> float:
        return self.packed_bytes / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"round": self.number, "files": self.files, "failed": self.failed,
                "packed_bytes": self.packed_bytes, "stored_bytes": self.stored_bytes,
                "seconds": round(self.seconds, 3), "bytes_per_second": round(self.bytes_per_second),
                "error": self.error}


@dataclass
class Totals:
    """The watch so far: rounds, files, bytes, and the time spent in rounds that worked files."""
    rounds: int = 0
    failed_rounds: int = 0
    files: int = 0
    failed: int = 0
    packed_bytes: int = 0
    stored_bytes: int = 0
    busy_seconds: float = 0.0
    stopped: str | None = None   # "idle", "SIGTERM" or "SIGINT"

    @property
    def bytes_per_second(self) -> float:
        """Throughput while working: packed bytes over the time of the rounds that packed them."""
        return self.packed_bytes / self.busy_seconds if self.busy_seconds > 0 else 0.0

    def add(self, done: Round):
        self.rounds += 1
        self.failed_rounds += done.error is not None
        self.files += done.files
        self.failed += done.failed
        self.packed_bytes += done.packed_bytes
        self.stored_bytes += done.stored_bytes
        if done.files:
            self.busy_seconds += done.seconds

    def as_dict(self) -> dict:
        return {"rounds": self.rounds, "failed_rounds": self.failed_rounds, "files": self.files,
                "failed": self.failed, "packed_bytes": self.packed_bytes, "stored_bytes": self.stored_bytes,
                "busy_seconds": round(self.busy_seconds, 3), "bytes_per_second": round(self.bytes_per_second),
                "stopped": self.stopped}


class Watcher:
    """Runs rounds of a worker until stopped. make_worker() gives a fresh Worker on a repository
    handle of its own for each round (closed after it); report(round) is called after every round, before the sleep."""

    def __init__(self, make_worker, interval: float, max_idle: int | None = None, report=None):
        self.make_worker = make_worker
        self.interval = interval
        self.max_idle = max_idle
        self.report = report or (lambda done: None)
        self.totals = Totals()
        self.worker = None   # the current round's, for what an interruption handed back
        self.idle = 0        # rounds in a row that found nothing to claim

    def run(self) -> Totals:
        """Rounds until max_idle idle rounds in a row (never, without max_idle) or an interruption.
        SIGTERM and SIGINT end the watch with totals.stopped set; a lease held then was handed back."""
        try:
            with interruptible():   # SIGTERM while asleep stops the watch as cleanly as during a round
                while True:
                    done = self._round(self.totals.rounds + 1)
                    self.totals.add(done)
                    failed_round = done.error is not None
                    self.idle = 0 if done.files or failed_round else self.idle + 1
                    self.report(done)
                    if self.stopping:
                        self.totals.stopped = "idle"
                        return self.totals
                    # Each round ends with the queue empty (Worker.run claims until nothing is left).
                    time.sleep(self.interval)
        except KeyboardInterrupt as e:
            self.totals.stopped = "SIGINT" if type(e) is KeyboardInterrupt else "SIGTERM"
            return self.totals

    @property
    def stopping(self) -> bool:
        return self.max_idle is not None and self.idle >= self.max_idle

    @property
    def handed_back(self) -> int:
        return len(self.worker.released) if self.worker is not None else 0

    def _round(self, number: int) -> Round:
        started = time.monotonic()
        self.worker = None
        try:
            self.worker = self.make_worker()
            results: list[WorkResult] = self.worker.run()
        except KeyboardInterrupt:
            raise
        except Exception as e:   # noqa: BLE001 - a round that fails is retried; the traceback goes to the log
            logs.record(f"watch round {number}: {e}", e)
            return Round(number, seconds=time.monotonic() - started, error=_first_line(e))
        finally:
            if self.worker is not None:   # each round opens the repository afresh: a failed one leaves nothing behind
                self.worker.repo.close()
        return Round(number, files=len(results), failed=sum(not r.ok for r in results),
                     packed_bytes=sum(r.packed_bytes for r in results),
                     stored_bytes=sum(r.stored_bytes for r in results), seconds=time.monotonic() - started)


def _first_line(error: Exception) -> str:
    """Our own errors (a remote, git, the store) as they read; anything else with its type."""
    from ..git.repo import GitError
    from ..store.shared import StoreError
    from ..transfer.sync import SyncError
    if isinstance(error, (SyncError, GitError, StoreError)):
        text = str(error).strip().splitlines()
        return text[0] if text else type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        return error.strerror + (f" ({error.filename})" if error.filename else "")
    return note_error(error)
