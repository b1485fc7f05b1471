"""The processes of `git panini serve`'s jobs: each leads a process group of its own, is waited for until its
job's deadline, then ended as a group (SIGTERM, SIGKILL after a grace), and all are ended at a stop.

A group, not a process: what a job's process started (git's remote helpers, ssh, the worker's git) goes with
it, and cannot hold a stuck clone's pipe open past the job's time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from ...util import liveness

STOP_GRACE_SECONDS = 60   # a terminated worker hands back its leases within this, or is killed


class Stopped(Exception):
    """The server is stopping: the job goes back to queued and runs again at the next start."""


def signal_group(pid: int, sig: int):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Supervisor:
    """Starts the jobs' processes and ends them: at a job's deadline, or all of them at a stop."""

    def __init__(self, env: dict, grace: float = STOP_GRACE_SECONDS):
        self.env = env
        self.grace = grace     # how long a process may take to end on SIGTERM before SIGKILL
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}

    def spawn(self, cmd: list[str], cwd: str) -> subprocess.Popen:
        with self._lock:   # checked and registered at once: a stop never misses a process
            if self.stopping.is_set():
                raise Stopped()
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            self._procs[proc.pid] = proc
            return proc

    def wait(self, proc: subprocess.Popen, deadline: float) -> tuple[bytes, bytes, str | None]:
        """(stdout, stderr, None) once proc exits by itself. Past `deadline` (time.monotonic()): SIGTERM to its
        group, SIGKILL after the grace, and the third item is the signal that ended it ('SIGTERM' or 'SIGKILL')."""
        try:
            try:
                out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
                return out, err, None
            except subprocess.TimeoutExpired:
                pass
            signal_group(proc.pid, signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=self.grace)   # still reading: a full pipe must not block it
                ended = "SIGTERM"
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                ended = "SIGKILL"
            signal_group(proc.pid, signal.SIGKILL)   # the leader is gone; what it started may not be
            return out, err, ended
        finally:
            with self._lock:
                self._procs.pop(proc.pid, None)

    def stop(self, grace: float = STOP_GRACE_SECONDS):
        """Start no more processes; SIGTERM the running ones (a worker hands back its leases) and SIGKILL what
        is left after `grace` seconds."""
        self.stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in procs:   # the leader may be gone while its group lives on
            signal_group(proc.pid, signal.SIGKILL)


def end_orphan(record: dict, log, grace: float = STOP_GRACE_SECONDS):
    """A worker a previous server started for this job and left running (killed with -9: its workers lead
    sessions of their own, so they outlive it): end it, so that it hands its leases back, before the job runs
    again in the same clone (two workers in one clone would share its refs)."""
    pid = record.get("worker_pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return
    started = record.get("worker_started")   # absent in a record of git-panini before it: the pid alone
    if not isinstance(started, (int, float)) or isinstance(started, bool):
        started = liveness.create_time(pid)   # the process the command line below is read from
    if not liveness.alive(pid, started):
        return   # gone, or its pid was given to another process since
    argv = liveness.command_line(pid)
    if argv is None:
        return   # gone, or not ours to read (so not known to be ours to end)
    if "git_panini" not in argv or record["job"] not in argv:
        return   # the pid was reused by something else
    log(f"job {record['job']}: ending the worker a previous server left running (pid {pid})")
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while liveness.alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not liveness.alive(pid, started):
            return
