"""util.liveness, the one "is this process alive" check: a live child, a reaped one, a zombie nobody reaped,
a reused pid (a recorded create time that is not the process's), a process we may not inspect (AccessDenied:
alive); and its callers' records: a lease note's `pid_started`, a journal's create-time mark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from conftest import make_repo
from git_panini.git.repo import Repo
from git_panini.store import journal
from git_panini.util import liveness
from git_panini.work import lease


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_live_child_is_alive_and_keeps_its_create_time(child):
    started = liveness.create_time(child.pid)
    assert started is not None
    assert liveness.alive(child.pid) and liveness.alive(child.pid, started)
    time.sleep(0.05)
    assert liveness.create_time(child.pid) == started      # a mark that does not move
    assert liveness.alive(os.getpid(), liveness.create_time(os.getpid()))
    argv = liveness.command_line(child.pid)
    assert argv is not None and argv[-1] == "import time; time.sleep(60)"


def test_a_reaped_child_is_gone(child):
    started = liveness.create_time(child.pid)
    child.kill()
    child.wait()
    assert not liveness.alive(child.pid)
    assert not liveness.alive(child.pid, started)
    assert liveness.create_time(child.pid) is None
    assert liveness.command_line(child.pid) is None


def test_a_zombie_nobody_reaped_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        started = liveness.create_time(proc.pid)
        _until(lambda: not liveness.alive(proc.pid))       # ended; not reaped (no wait() yet)
        assert psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE   # it does still exist
        assert not liveness.alive(proc.pid, started)
        assert liveness.command_line(proc.pid) is None
    finally:
        proc.wait()


def test_a_reused_pid_does_not_count_as_the_recorded_process(child):
    started = liveness.create_time(child.pid)
    # The pid's process is not the one whose create time was recorded: a newer one got its pid.
    assert not liveness.alive(child.pid, started - 100)
    assert not liveness.alive(child.pid, started + 100)
    # Within the slack, the same process (times are read again, and rounded).
    assert liveness.alive(child.pid, started + liveness.START_SLACK / 2)
    assert liveness.alive(child.pid, None)                 # nothing recorded: the pid alone


@pytest.mark.parametrize("pid", [0, -1, True, 2 ** 40, 2 ** 63, "123", None])
def test_a_pid_no_process_can_have_is_not_alive(pid):
    assert not liveness.alive(pid)
    assert liveness.create_time(pid) is None
    assert liveness.command_line(pid) is None


class _Denied:
    """psutil.Process of a process that exists but that we may not inspect, at `where`."""

    where = "init"

    def __init__(self, pid):
        self.pid = pid
        if self.where == "init":
            raise psutil.AccessDenied(pid)

    def status(self):
        if self.where == "status":
            raise psutil.AccessDenied(self.pid)
        return psutil.STATUS_SLEEPING

    def create_time(self):
        raise psutil.AccessDenied(self.pid)

    def cmdline(self):
        raise psutil.AccessDenied(self.pid)


@pytest.mark.parametrize("where", ["init", "status", "create_time"])
def test_a_process_we_may_not_inspect_counts_as_alive(monkeypatch, child, where):
    started = liveness.create_time(child.pid)
    monkeypatch.setattr(_Denied, "where", where)
    monkeypatch.setattr(psutil, "Process", _Denied)
    assert liveness.alive(child.pid)
    assert liveness.alive(child.pid, started)
    assert liveness.alive(child.pid, started - 100)        # cannot be told from a reused pid: alive
    assert liveness.create_time(child.pid) is None
    assert liveness.command_line(child.pid) is None


def test_no_such_process_from_psutil_is_gone(monkeypatch, child):
    def gone(pid):
        raise psutil.NoSuchProcess(pid)

    monkeypatch.setattr(psutil, "Process", gone)
    assert not liveness.alive(child.pid)
    assert liveness.create_time(child.pid) is None


# --- the callers' records ------------------------------------------------------------------------


def test_a_lease_names_its_holders_create_time_and_is_judged_by_it():
    here = lease.holder()
    assert here["pid"] == os.getpid()
    assert here["pid_started"] == f"{os.getpid()}:{liveness.create_time(os.getpid())}"
    assert lease.holder_started(here) == liveness.create_time(os.getpid())
    assert lease.holder_alive(here) and lease.held_here(here)

    reused = dict(here, pid_started=f"{os.getpid()}:{lease.holder_started(here) - 100}")
    assert not lease.holder_alive(reused)                  # our pid, another process's create time
    # Left behind by a holder that did not write the field (git-panini before it retook the lease):
    # it names another pid, so the note is judged by its pid alone, as a note without it.
    stale = dict(here, pid_started=f"{os.getpid() + 1}:1.5")
    assert lease.holder_started(stale) is None and lease.holder_alive(stale)
    old = {k: v for k, v in here.items() if k != "pid_started"}
    assert lease.holder_started(old) is None and lease.holder_alive(old)
    for bad in ("", "x:1", f"{os.getpid()}:", f"{os.getpid()}:soon", f"{os.getpid()}:nan", 7):
        assert lease.holder_started(dict(here, pid_started=bad)) is None
    assert lease.released(dict(here, status="processing", prior="pending"))["pid_started"] is None


def test_a_journal_of_a_reused_pid_is_replayed_an_old_one_waits_for_its_pid(tmp_path):
    path = make_repo(tmp_path)
    repo = Repo(str(path))
    try:
        own = journal.Journal(repo)
        started = liveness.create_time(os.getpid())
        assert os.path.basename(own.path).endswith(f".{round(started * 1000)}")
        panini = path / ".git" / "panini"
        line = json.dumps({"path": "gone.bin", "manifest": "0" * repo.hex_len}) + "\n"
        pid = os.getpid()
        reused = panini / f"journal-{pid}-deadbeef.{round((started + 100) * 1000)}"   # not our create time
        old = panini / f"journal-{pid}-cafef00d"      # no create time: judged by its pid, which runs
        for p in (reused, old, own.path):
            with open(p, "w") as f:
                f.write(line)
        recorded, lost = journal.replay(repo)
        assert recorded == [] and lost == [("gone.bin", "0" * repo.hex_len)]   # the reused pid's, replayed
        assert not reused.exists() and old.exists() and os.path.exists(own.path)
    finally:
        repo.close()
