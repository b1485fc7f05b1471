"""kill -9 of a worker at random moments: after every kill the store is consistent (`git panini fsck`) and
every file still reconstructs bit-perfectly (`git panini verify --all`); a later `git panini work` retakes
the leases the dead workers left behind and completes everything."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone

from conftest import notes_of, MiB, git, make_repo, run, sha256_file, write_random, write_text

TRIALS = 20   # trials 0-2 and odd ones kill at a named point (git_panini/util/crash_points.py), the rest at a random moment

# A worker exactly like `git panini work --no-remote --effort 1`, with two differences the CLI has no
# option for: a 1-second lease (a killed worker's claim expires at once, so the next trial can retake it
# instead of waiting out the default 15 minutes), and one file per batch (a batch commits once, so small
# batches put commits, and so kills during commits, inside the 0.05-2 s window).
RUNNER = """
import sys
from git_panini.git.repo import Repo
from git_panini.work.worker import Worker
worker = Worker(Repo("."), effort=1, lease_seconds=1)
while worker.run(max_files=1):
    pass
"""


def _backlog(path, rng: random.Random) -> dict[str, str]:
    """8 files of 1-2.5 MiB, mixed: random binary (stored as is, quick) and, larger, text (packed by xz or
    zstd -19 at effort 1, slow). Workers take small files first, so early trials finish files (and get
    killed around commits), later ones get killed while packing text. Returns {name: sha256}."""
    digests = {}
    for i in range(8):
        name = f"b{i}.bin"
        if i % 3 == 0:
            write_text(path / name, rng.randrange(3 * MiB // 2, 5 * MiB // 2), seed=i)
        else:
            write_random(path / name, rng.randrange(1 * MiB, 3 * MiB // 2), seed=i)
        digests[name] = sha256_file(path / name)
    return digests


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in this process group."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _kill(proc: subprocess.Popen):
    """SIGKILL the worker process (only it: git commands it started finish on their own, as after a real
    kill -9), then wait until nothing of its process group is left running."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid):
        assert time.monotonic() < deadline, "an orphan of the killed worker is still running after 60 s"
        time.sleep(0.02)


def _check(path, what: str):
    """Right after the kill, what `git gc --prune=now` keeps is all there is: then `git panini fsck` and
    `git panini verify --all` (run side by side) must both pass."""
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")
    procs = [subprocess.Popen(["git", "panini", *args], cwd=path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for args in (["fsck", "--json"], ["verify", "--all"])]
    (fsck_out, fsck_err), (verify_out, verify_err) = [p.communicate(timeout=300) for p in procs]
    assert procs[0].returncode == 0, f"{what}: fsck failed\n{fsck_out}\n{fsck_err}"
    assert procs[1].returncode == 0, f"{what}: verify failed\n{verify_out}\n{verify_err}"
    assert "Traceback" not in fsck_err + verify_err
    return json.loads(fsck_out)["counts"]


def _wait_out_leases(path):
    leases = [n["lease_until"] for n in notes_of(path).values() if n.get("status") == "processing"]
    if leases:
        until = datetime.strptime(max(leases), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.05)


def _trial(path, env: dict, delay: float | None) -> tuple[str, list[str], str]:
    """One worker run, ended by SIGKILL: by its own crash point (env), or by us after `delay` seconds.
    Returns how it ended ("killed" or "exited"), the crash points it reached in order, and its stderr."""
    trace = path / ".git" / "crash-trace"
    trace.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PANINI_CRASH_TRACE": str(trace), **env})
    try:
        proc.wait(timeout=delay if delay is not None else 300)
    except subprocess.TimeoutExpired:
        pass
    _kill(proc)
    stderr = proc.stderr.read().decode(errors="replace")
    points = trace.read_text().split() if trace.exists() else []
    if proc.returncode == -signal.SIGKILL:
        return "killed", points, stderr
    assert proc.returncode == 0, stderr
    return "exited", points, stderr


def test_kill_9_at_random_moments_loses_nothing(tmp_path, report):
    """Trials of two kinds. At a named point: the worker kills itself with SIGKILL at the N-th ref update
    it makes (claims, pack refs, store and notes commits, dropping raw copies), N drawn from a seeded
    generator: each such kill is asserted to have landed inside the run, at that point. At a random
    moment: we kill it after a random delay; where that landed (inside the run or after it ended, and
    after which point) is recorded, never assumed. After every kill, fsck and verify must pass."""
    path = make_repo(tmp_path, track=("*.bin",))
    rng = random.Random(20261121)
    digests = _backlog(path, rng)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "backlog")
    total = len(digests)     # no remote: the worker publishes the committed files into its own store first

    outcomes = []
    for trial in range(TRIALS):
        left = total - Counter(n.get("status") for n in notes_of(path).values())["completed"]
        if trial < 3 or trial % 2:   # the first three see the whole backlog: each kill lands with work left
            nth = rng.randint(1, 8)
            ended, points, stderr = _trial(path, {"PANINI_CRASH_AT": f"update-ref:{nth}"}, None)
            where = f"named update-ref:{nth}"
            # Killed exactly at its nth ref update, or the run ended before making that many.
            reached = points.count("update-ref")
            assert (ended == "killed" and reached == nth and points[-1] == "update-ref") or \
                (ended == "exited" and reached < nth), f"trial {trial}: {where}: {ended} after {points}\n{stderr}"
        else:
            delay = rng.uniform(0.05, 2.0)
            ended, points, stderr = _trial(path, {}, delay)
            where = f"after {delay:.2f} s"
        point = f"{points[-1]}#{len(points)}" if points else None
        counts = _check(path, f"trial {trial} ({ended} {where}, last point {point})")
        statuses = Counter(n.get("status") for n in notes_of(path).values())
        assert statuses["failed"] == 0, f"trial {trial}: a kill must not count as a failure: {statuses}"
        outcomes.append((trial, where, ended, point or "-", left, statuses["completed"], statuses["processing"],
                         statuses["pending"], counts["packs"], counts["raw_chunks"]))

    named = [o for o in outcomes if o[1].startswith("named")]
    timed = [o for o in outcomes if not o[1].startswith("named")]
    named_mid_work = [o for o in named if o[2] == "killed" and o[4] > 0]
    timed_mid_work = [o for o in timed if o[2] == "killed" and o[4] > 0]
    progress = [o[5] for o in outcomes]
    report(f"kill -9: {len(named)} kills at named points ({len(named_mid_work)} with work left), "
           f"{len(timed)} at random moments ({len(timed_mid_work)} landed with work left); "
           f"completed after each trial {progress}")
    for o in outcomes:
        print("  trial %2d  %-22s %-6s at %-10s left %d  completed %d processing %d pending %d  packs %d raw %d" % o)
    # A named kill at the N-th ref update (N <= 8) lets a run finish at most two files (each takes at least
    # three ref updates), so the first three trials, all named, find work left whatever the machine's speed.
    assert len(named_mid_work) >= 3, "the named kills never caught a worker in the middle of its work"
    assert progress == sorted(progress), "a kill undid completed work"

    # One more worker, killed right after its claim lands: its lease must be retaken below.
    extra = write_text(path / "late.bin", 1 * MiB, seed=77)
    digests["late.bin"] = sha256_file(extra)
    git(path, "add", "late.bin")
    git(path, "commit", "-q", "-m", "late")
    proc = subprocess.Popen([sys.executable, "-c", RUNNER], cwd=path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not [n for n in notes_of(path).values() if n.get("status") == "processing"]:
        assert proc.poll() is None and time.monotonic() < deadline, "the worker never claimed anything"
        time.sleep(0.01)
    _kill(proc)
    orphaned = {m for m, n in notes_of(path).items() if n.get("status") == "processing"}
    dead_worker = {n["worker"] for m, n in notes_of(path).items() if m in orphaned}
    _check(path, "after the claim-kill")

    # The real CLI, after the 1 s leases ran out: retakes them and finishes everything.
    _wait_out_leases(path)
    out = run(["git", "panini", "work", "--no-remote", "--effort", "1", "--json"], cwd=path).stdout
    worked = {f["manifest"] for f in json.loads(out)["files"] if f["ok"]}
    assert orphaned <= worked
    notes = notes_of(path)
    assert len(notes) == len(digests)
    assert {n["status"] for n in notes.values()} == {"completed"}
    assert all(n["attempts"] == 0 and n["lease_until"] is None for n in notes.values())
    assert all(notes[m]["worker"] not in dead_worker for m in orphaned)
    counts = _check(path, "after the final work")
    assert counts["raw_chunks"] == 0 and counts["packs"] > 0
    git(path, "fsck", "--no-progress", "--connectivity-only")
    for name in digests:
        (path / name).unlink()
    git(path, "checkout", "--", ".")
    for name, digest in digests.items():
        assert sha256_file(path / name) == digest, name
    report(f"kill -9: final `git panini work` retook {len(orphaned)} expired lease(s) and worked {len(worked)} "
           f"file(s); all {len(notes)} completed, verify and fsck pass, checkout bit-identical")
