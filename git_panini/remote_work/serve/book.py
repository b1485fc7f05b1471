"""The job book: one JSON record per job under WORKDIR/jobs, replaced atomically on every change, and the bound
on how many jobs may wait (--max-queued).

A record is written before the server answers, so a restart knows every accepted job and runs again those
that were queued or running.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from datetime import datetime, timezone

from ...work.lease import iso

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
STATES = ("queued", "running", "completed", "failed")


def now() -> str:
    return iso(datetime.now(timezone.utc))


class QueueFull(Exception):
    """A new job would make more than the allowed number wait."""

    def __init__(self, waiting: int):
        super().__init__(f"{waiting} job(s) wait already")
        self.waiting = waiting


class JobBook:
    """The job records, one JSON file per job, replaced atomically on every change."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        self._queued: set[str] = set()   # jobs waiting for a slot: what --max-queued bounds
        for name in os.listdir(directory):
            if name.endswith(".json") and JOB_ID.match(name[:-5]):
                try:
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        record = json.load(f)
                except (OSError, ValueError):
                    continue
                if isinstance(record, dict) and record.get("job") == name[:-5] and record.get("state") in STATES:
                    self._keep(record)

    def _keep(self, record: dict):
        self._records[record["job"]] = record
        if record["state"] == "queued":
            self._queued.add(record["job"])
        else:
            self._queued.discard(record["job"])

    def _write(self, record: dict):
        path = os.path.join(self.directory, record["job"] + ".json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)

    def get(self, job: str) -> dict | None:
        with self._lock:
            record = self._records.get(job)
            return json.loads(json.dumps(record)) if record else None

    def add(self, job: str, remote: str, manifests: list[str], max_queued: int | None = None) -> tuple[dict, bool]:
        """(the record, True) for a new job, written before this returns; (the existing one, False).
        QueueFull when the job is new and max_queued jobs wait already."""
        with self._lock:
            if job in self._records:
                return dict(self._records[job]), False
            if max_queued is not None and len(self._queued) >= max_queued:
                raise QueueFull(len(self._queued))
            record = {"job": job, "remote": remote, "manifests": manifests, "state": "queued",
                      "progress": {"phase": "queued"}, "result": None, "created": now(), "started": None,
                      "finished": None, "runs": 0}
            self._write(record)
            self._keep(record)
            return dict(record), True

    def update(self, job: str, while_state: str | None = None, **fields) -> dict:
        """Change a record (only while it is in `while_state`, if given) and write it."""
        with self._lock:
            if while_state is not None and self._records[job]["state"] != while_state:
                return dict(self._records[job])
            record = dict(self._records[job], **fields)
            try:
                self._write(record)
            except OSError as e:
                # A full disk must not kill the job's thread: clients still get the state, and the record
                # says it will not survive a restart.
                record["record_error"] = f"cannot write the job record: {e.strerror or e}"
            self._keep(record)
            return dict(record)

    def unfinished(self) -> list[str]:
        """Jobs a stop (or a crash) left queued or running, oldest first."""
        with self._lock:
            return [r["job"] for r in sorted(self._records.values(), key=lambda r: r["created"])
                    if r["state"] in ("queued", "running")]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(r["state"] for r in self._records.values()))
