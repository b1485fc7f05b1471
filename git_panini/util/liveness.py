"""Is this process still alive? The one answer for every pid git-panini records and checks later.

A pid is written down by one process and judged by another, maybe much later:

- a lease note names its holder (`host`, `pid`, `pid_ns`, `pid_started`): work.lease treats a lease of
  this machine whose holder is gone as lapsed, so another worker may retake it;
- a clean filter's journal and WAL are named `journal-<pid>-<token>[.<create time>]`: store.journal
  replays the journal of a session that is gone (its store commit never happened) and removes its files
  (a pack's `.keep` file names a pid only, and is judged by it);
- `git panini serve` keeps each job's worker pid (and `worker_started`): the next server ends a worker
  that a server killed with -9 left running, before it runs the job again in the same clone.

alive(pid, started) answers all of them through psutil, so they agree, also where there is no /proc to
read (macOS, Windows). A process is alive when it exists, is not a zombie (it ended and nobody reaped it
yet: in a container whose init never reaps, for ever), and, when the caller recorded its create time,
is still that process: a newer process the system gave the pid to does not count.

When the answer cannot be known (psutil.AccessDenied: the process exists, but it is another user's and
the system does not let us read its state, as /proc mounted with hidepid=1 does), the process counts as
ALIVE. That is the safe side for each caller: each one acts only on a process that is gone, and acting on
a live one does damage, while waiting on a dead one only costs time:

- a lease is then kept until its time runs out (lease_until) instead of being retaken from a worker that
  may still be packing the file (two workers packing one file, each undoing the other's notes);
- a journal is then not replayed yet (the next commit's hooks look again) instead of having its journal
  and WAL replayed and removed while the filter still appends to them (what it logs afterwards would go
  to files nobody replays);
- serve waits for a worker it signalled until the grace time ends, and kills it then, instead of starting
  the job again beside a worker that still runs in the same clone. (It signals a worker only when it can
  read its command line: one it cannot read is not known to be ours, and is left alone.)

Create times: create_time() gives a number that never changes while the process runs, to record and hand
back to alive() later, not a date. On Linux it counts seconds since boot: psutil's epoch time there is
the boot time plus that, and the boot time moves whenever the wall clock is stepped (NTP, a resumed VM),
which would make a live process look like a reused pid. Elsewhere it is psutil's create time (the wall
clock when the process started, which later clock changes leave alone). Times within START_SLACK seconds
are the same process's: a pid reused within a second of the first process's start counts as alive, the
answer every check gave before create times were recorded. A record made without a create time (by
git-panini before this module, or when it could not be read) is judged by its pid alone, as before.
"""

from __future__ import annotations

import os
import sys

START_SLACK = 1.0   # seconds: two create times this close are one process's


def _plausible(pid) -> bool:
    """A pid a process can have (0 is the kernel's scheduler, or 'this process group' to kill())."""
    return isinstance(pid, int) and not isinstance(pid, bool) and pid > 0


def _start_of(pid: int) -> float:
    """The create time of `pid` as create_time() gives it (raises psutil's errors)."""
    import psutil   # loaded when a pid is judged, not by every clean filter (own_create_time)
    if psutil.LINUX:
        # Both read the boot time now (psutil 5.9 adds the one it read last; a Process caches its
        # create time, hence a new one): a clock step between the two reads is all that could differ.
        boot = psutil.boot_time()
        return psutil.Process(pid).create_time() - boot
    return psutil.Process(pid).create_time()


def create_time(pid: int) -> float | None:
    """A mark of when the process started, to record beside its pid and pass to alive() later: seconds
    since boot on Linux, since the epoch elsewhere (see the module's docstring). None when there is no
    such process (a zombie has one still) or its create time cannot be read."""
    if not _plausible(pid):
        return None
    import psutil
    try:
        return round(_start_of(pid), 3)
    except (psutil.Error, OSError, RuntimeError, ValueError, OverflowError):
        return None


def own_create_time() -> float | None:
    """create_time(os.getpid()), without loading psutil on Linux: every clean filter session records its
    own. /proc/self/stat's start time in clock ticks since boot is what psutil's create time less its boot
    time comes to there."""
    if not sys.platform.startswith("linux"):
        return create_time(os.getpid())
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        # The fields after the command name (which may hold spaces and parentheses): state is field 3,
        # starttime field 22.
        return round(int(stat[stat.rindex(b")") + 2:].split()[19]) / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return create_time(os.getpid())


def alive(pid: int, started: float | None = None) -> bool:
    """The process `pid` exists and is not a zombie; with `started` (a create_time() recorded earlier),
    it is also that same process, not a newer one that got its pid. Unknowable (psutil.AccessDenied):
    alive, the safe answer for every caller (the module's docstring says why). A pid no process can
    have (not a positive int, or beyond the system's range): not alive."""
    if not _plausible(pid):
        return False
    import psutil
    try:
        proc = psutil.Process(pid)
    except psutil.AccessDenied:
        return True
    except (psutil.Error, OSError, ValueError, OverflowError):
        return False   # NoSuchProcess (ZombieProcess too), or a pid out of range
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.AccessDenied:
        pass   # exists; whether it is a zombie cannot be told
    except psutil.Error:   # NoSuchProcess, ZombieProcess
        return False
    if started is None:
        return True
    try:
        return abs(_start_of(pid) - started) <= START_SLACK
    except (psutil.AccessDenied, OSError, RuntimeError):
        return True    # exists; its create time (or the boot time) cannot be read
    except psutil.Error:   # NoSuchProcess, ZombieProcess: it ended meanwhile
        return False


def command_line(pid: int) -> list[str] | None:
    """The arguments the process `pid` runs with (to tell a process of ours from one that got its pid),
    or None: no such process, a zombie, or one we may not inspect."""
    if not _plausible(pid):
        return None
    import psutil
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, OSError, ValueError, OverflowError):
        return None
