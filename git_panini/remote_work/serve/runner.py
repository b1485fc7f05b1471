"""How `git panini serve` runs one job: a slot's partial clone of the remote (cloned once, fetched before each
job), a wait for the remote's notes to queue the job (a dispatcher delivers first and publishes after), then
`git panini work --job` in a process of its own, so a job that crashes cannot take the server down.

Each job has a time limit (--job-timeout) from the moment it starts running: its clone, its fetches, its wait
for the notes and its worker all end by then. Past it, the process at work is ended as a group (SIGTERM: a
worker hands its leases back; SIGKILL after a grace), a worker's leases are released on its behalf (`git
panini work --release`: the leases of this machine's dead processes), and the job fails with one line. A
clone in which something was killed with SIGKILL is removed (Git's lock files may be left in it): the slot's
next job clones afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ...git.repo import Repo, first_error_line
from ...store.notes import Notes
from ...util import liveness
from ...util.errors import one_line
from ...work.threads import threads_per_job
from .book import JobBook, now
from .redact import Redactor
from .supervisor import STOP_GRACE_SECONDS, Stopped, Supervisor

NOTES_WAIT_SECONDS = 120      # how long a delivered job may take to appear in the remote's notes
DEFAULT_JOB_TIMEOUT = 1800    # seconds a job may run (clone, fetches, notes, worker) before it is ended
PROGRESS_SECONDS = 3          # a running job's progress is counted again at most this often


class JobFailed(Exception):
    """A job could not be run; one line."""


class JobRunner:
    """A fixed pool of job threads, one slot (clone) each; the jobs' processes go through a Supervisor."""

    def __init__(self, book: JobBook, workdir: str, concurrency: int, effort: int, env: dict, log,
                 job_timeout: float = DEFAULT_JOB_TIMEOUT):
        self.book = book
        self.workdir = workdir
        self.effort = effort
        self.threads = threads_per_job(concurrency)
        self.log = log
        self.job_timeout = job_timeout
        # A job's processes get at most its own time limit again to end on SIGTERM.
        self.procs = Supervisor(env, grace=min(STOP_GRACE_SECONDS, job_timeout))
        self.stopping = self.procs.stopping
        self.redact = Redactor(workdir)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="panini-job")
        # Each running job has a clone of its own (slot): two `git panini work` in one repository
        # race on its local refs and index; across clones they meet only in the remote's CAS.
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(concurrency):
            self._slots.put(slot)
        self._lock = threading.Lock()
        self._clone_locks: dict[str, threading.Lock] = {}
        self._fetched: dict[str, float] = {}                   # clone -> when its last fetch started
        self._accepted: dict[str, float] = {}                  # job -> when it was submitted
        self._working: dict[str, tuple[str, list[str]]] = {}   # job -> (clone, files) while its worker runs
        self._progress_at: dict[str, float] = {}

    def submit(self, job: str):
        self._accepted[job] = time.monotonic()
        self._pool.submit(self._run, job)

    def stop(self, grace: float = STOP_GRACE_SECONDS):
        """Start no more jobs; SIGTERM the running processes (a worker hands back its leases), kill
        what is left after `grace` seconds, and wait for the job threads."""
        self.procs.stop(grace)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- one job ---------------------------------------------------------------------------------
    def _run(self, job: str):
        if self.stopping.is_set():
            return
        started = time.monotonic()
        try:
            result = self._work(job)
        except Stopped:
            self.book.update(job, state="queued", progress={"phase": "interrupted: runs again when the server starts"})
            self.log(f"job {job}: interrupted by the stop; queued again (a worker hands its leases back first)")
            return
        except JobFailed as e:
            self._fail(job, str(e))
            return
        except Exception as e:   # noqa: BLE001 - a bug here fails this job, not the server
            self._fail(job, f"{type(e).__name__}: {e}")
            return
        finally:
            self._accepted.pop(job, None)
            self._progress_at.pop(job, None)
        state = "completed" if result["exit"] == 0 else "failed"
        self.book.update(job, state=state, finished=now(), result=result,
                         progress=dict(self.book.get(job)["progress"], phase=state))
        took = time.monotonic() - started
        self.log(f"job {job}: {state}: {result['files']} file(s) worked, {result['failed']} failed, "
                 f"{result['packed_bytes']} bytes packed into {result['stored_bytes']} in {took:.1f} s")

    def _fail(self, job: str, reason: str):
        """The job failed: the whole reason to the log, and to the record (served over HTTP) without paths."""
        record = self.book.get(job)
        self.book.update(job, state="failed", finished=now(), result={"error": self.redact(reason, record["remote"])},
                         progress=dict(record["progress"], phase="failed"))
        self.log(f"job {job}: failed: {one_line(reason)}")

    def _work(self, job: str) -> dict:
        record = self.book.update(job, state="running", started=now(), progress={"phase": "clone"})
        deadline = time.monotonic() + self.job_timeout
        self.log(f"job {job}: running (remote {record['remote']})")
        slot = self._slots.get()
        try:
            return self._work_in(job, record, slot, deadline)
        finally:
            self._slots.put(slot)

    def _over(self, doing: str, ended: str = "") -> JobFailed:
        return JobFailed(f"over the time limit ({self.job_timeout:g} s, --job-timeout) while {doing}; "
                         f"{ended or 'its processes were ended'}")

    def _work_in(self, job: str, record: dict, slot: int, deadline: float) -> dict:
        clone = self._clone(record["remote"], slot, self._accepted.get(job, 0), deadline)
        self.book.update(job, progress={"phase": "waiting for the notes to queue it"})
        files = self._queued_files(job, clone, deadline)
        runs = self.book.get(job)["runs"] + 1
        self.book.update(job, runs=runs, progress={"phase": "work", "files": len(files), "completed": 0, "failed": 0})
        cmd = [sys.executable, "-m", "git_panini", "work", "--job", job, "--remote", "origin", "--json",
               "--effort", str(self.effort), "--threads", str(self.threads)]
        proc = self.procs.spawn(cmd, clone)
        # A server killed with -9 leaves it running: see end_orphan (the create time tells it from a reused pid).
        self.book.update(job, worker_pid=proc.pid, worker_started=liveness.create_time(proc.pid))
        self._working[job] = (clone, files)
        try:
            out, err, ended = self.procs.wait(proc, deadline)
        finally:
            self._working.pop(job, None)
        with open(os.path.join(self.book.directory, job + ".log"), "ab") as f:
            f.write(f"--- run {runs} ended {now()} exit {proc.returncode}".encode()
                    + (f" (over the time limit: {ended})".encode() if ended else b"") + b"\n" + err)
        if self.stopping.is_set() and proc.returncode != 0:
            raise Stopped()
        if ended:
            released = self._release(clone)
            if ended == "SIGKILL":
                self._discard(clone)
            raise self._over("working", f"its processes were ended ({ended}); {released}")
        try:
            results = json.loads(out)["files"]
        except (ValueError, KeyError, TypeError):
            raise JobFailed(f"git panini work exited {proc.returncode}: {first_error_line(err, proc.returncode)}") from None
        self._progress(job, clone, files)
        failed = [r for r in results if not r.get("ok")]
        return {"exit": proc.returncode, "files": len(results), "failed": len(failed),
                "packed_bytes": sum(r.get("packed_bytes") or 0 for r in results),
                "stored_bytes": sum(r.get("stored_bytes") or 0 for r in results),
                "errors": [{"manifest": r.get("manifest"), "error": self.redact(r.get("error") or "", record["remote"])}
                           for r in failed[:10]]}

    def _release(self, clone: str) -> str:
        """After a worker was ended: hand back the leases it still held (a worker killed with SIGKILL could not;
        they would otherwise hold its files until they lapse). What happened, in a few words."""
        cmd = [sys.executable, "-m", "git_panini", "work", "--release", "--remote", "origin", "--json"]
        proc = self.procs.spawn(cmd, clone)
        out, err, ended = self.procs.wait(proc, time.monotonic() + self.procs.grace)
        try:
            released = len(json.loads(out)["released"])
        except (ValueError, KeyError, TypeError):
            self.log(f"releasing the leases of an ended worker failed: {first_error_line(err, proc.returncode)}"
                     + (f" (over the time limit: {ended})" if ended else ""))
            return "its leases could not be released (they lapse)"
        return f"{released} lease(s) it held released"

    def _discard(self, clone: str):
        """A process killed with SIGKILL in this clone may have left Git's lock files in it, which would fail
        every later job of the slot: the next job clones afresh."""
        self._fetched.pop(os.path.basename(clone), None)
        shutil.rmtree(clone + ".old", ignore_errors=True)
        try:
            os.rename(clone, clone + ".old")   # at once: a clone half removed must never look whole
        except OSError:
            return
        shutil.rmtree(clone + ".old", ignore_errors=True)

    def _clone(self, remote: str, slot: int, since: float, deadline: float) -> str:
        """This slot's partial clone of the remote (made once), with the remote's store and notes as
        fetched after `since` (one fetch serves every job accepted before it started)."""
        key = f"{hashlib.sha256(remote.encode()).hexdigest()[:16]}-{slot}"
        path = os.path.join(self.workdir, "clones", key)
        with self._lock:
            lock = self._clone_locks.setdefault(key, threading.Lock())
        with lock:
            if not os.path.isdir(os.path.join(path, ".git")):
                partial = path + ".partial"
                shutil.rmtree(partial, ignore_errors=True)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # No blobs and no checkout, as the worker workflow: the job fetches just its chunks.
                self._git(["git", "clone", "--quiet", "--filter=blob:none", "--no-checkout", "--", remote, partial],
                          self.workdir, f"cannot clone {remote}", "cloning the remote", deadline, partial)
                os.rename(partial, path)
            if self._fetched.get(key, -1.0) < since:
                self._fetch(path, remote, deadline)
        return path

    def _fetch(self, clone: str, remote: str, deadline: float):
        started = time.monotonic()
        self._git([sys.executable, "-m", "git_panini", "fetch", "origin"], clone, f"cannot fetch from {remote}",
                  "fetching from the remote", deadline, clone)
        self._fetched[os.path.basename(clone)] = started

    def _queued_files(self, job: str, clone: str, deadline: float) -> list[str]:
        """The files the remote's notes give to this job, fetching again until they appear (the
        dispatcher publishes right after delivering) or NOTES_WAIT_SECONDS pass."""
        give_up = time.monotonic() + NOTES_WAIT_SECONDS
        delay = 0.2
        while True:
            files = [m for m, note in self._notes(clone).items() if note.get("job") == job]
            if files:
                return files
            if time.monotonic() > deadline:
                raise self._over("waiting for the remote's notes to queue it", "it was not started")
            if time.monotonic() > give_up:
                raise JobFailed(f"the remote's notes never queued job {job} (its dispatch was not published)")
            if self.stopping.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                raise Stopped()
            delay = min(2.0, delay * 2)
            with self._clone_locks[os.path.basename(clone)]:
                self._fetch(clone, self.book.get(job)["remote"], deadline)

    @staticmethod
    def _notes(clone: str) -> dict[str, dict]:
        repo = Repo(clone)
        try:
            return Notes(repo).all()
        finally:
            repo.close()

    def _progress(self, job: str, clone: str, files: list[str]):
        notes = self._notes(clone)
        states = Counter((notes.get(m) or {}).get("status") for m in files)
        self.book.update(job, "running", progress={"phase": "work", "files": len(files),
                                                   "completed": states["completed"], "failed": states["failed"]})

    def refresh_progress(self, job: str):
        """Count the job's files done so far (from the clone's notes, which its worker updates), when
        someone asks and at most every PROGRESS_SECONDS: a job nobody watches costs nothing."""
        working = self._working.get(job)
        with self._lock:
            if working is None or time.monotonic() - self._progress_at.get(job, 0) < PROGRESS_SECONDS:
                return
            self._progress_at[job] = time.monotonic()
        self._progress(job, *working)

    def _git(self, cmd: list[str], cwd: str, what: str, doing: str, deadline: float, clone: str):
        proc = self.procs.spawn(cmd, cwd)
        _, err, ended = self.procs.wait(proc, deadline)
        if proc.returncode != 0 and self.stopping.is_set():
            raise Stopped()
        if ended:
            if ended == "SIGKILL":
                self._discard(clone)
            raise self._over(doing)
        if proc.returncode != 0:
            raise JobFailed(f"{what}: {first_error_line(err, proc.returncode)}")
