"""No poison pills, and leases that fit the work: real repositories, a real bare remote, real worker processes.

- A hostile file in a batch of 50 (its manifest names a chunk that only a lying pack on the remote
  claims to yield) fails alone, with a one-line error in its note and in `git panini status`.
- A worker interrupted (SIGINT, SIGTERM) hands its file back: the next run retakes it at once.
- A worker killed with -9 leaves a lease whose process is gone: retaken at once, or released by
  `git panini work --release`; another machine's lease only with --force.
- A slow worker renews its lease by compare-and-swap: a second worker started after the first lease
  would have expired takes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import MiB, git, make_bare, make_repo, manifest_chunks, notes_of, pointer_of, run, sha256_file, write_text
from git_panini.format import manifest as manifest_mod
from git_panini.store.notes import Notes, new_note
from git_panini.format.pointer import Pointer
from git_panini.transfer.publish import publish_local
from git_panini.git.repo import Repo
from git_panini.store.shared import Store, manifest_path, pack_path

TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _until(note) -> datetime:
    return datetime.strptime(note["lease_until"], TIME).replace(tzinfo=timezone.utc)


def _tar(size: int, seed: int) -> bytes:
    """A tar archive of text members: its first chunk starts with a header the planner's scanner follows."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        n = 0
        while out.tell() < size:
            data = hashlib.shake_256(f"{seed}-{n}".encode()).hexdigest(64 << 10).encode()
            info = tarfile.TarInfo(f"member{n}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            n += 1
    return out.getvalue()


def _hostile_commit(bare, name: str, manifest: str, size: int):
    """A commit on the bare's main adding `name` as a pointer to `manifest`: as a hostile clone pushes it."""
    pointer = Pointer(manifest, "0" * 64, size).encode()
    blob = git(bare, "hash-object", "-w", "--stdin", input=pointer).stdout.strip()
    tip = git(bare, "rev-parse", "main").stdout.strip()
    entries = git(bare, "ls-tree", "main").stdout + f"100644 blob {blob}\t{name}\n"
    tree = git(bare, "mktree", input=entries).stdout.strip()
    commit = git(bare, "commit-tree", tree, "-p", tip, "-m", "hostile").stdout.strip()
    git(bare, "update-ref", "refs/heads/main", commit, tip)


def test_one_hostile_file_in_a_batch_of_50_fails_alone(tmp_path):
    """Its planning needs a chunk that only a lying pack on the remote claims to yield (the pack's data
    cannot be had): before, the ReadError escaped the per-file handling, aborted the whole batch with a
    traceback and left all 50 notes `processing` with 0 attempts."""
    work = make_repo(tmp_path, track=("*.bin",))
    bare, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    digests = {}
    for i in range(48):
        digests[f"small{i:02}.bin"] = sha256_file(write_text(work / f"small{i:02}.bin", 4096 + 997 * i, seed=i))
    (work / "archive.bin").write_bytes(_tar(3 * MiB // 2, seed=1))
    digests["archive.bin"] = sha256_file(work / "archive.bin")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "49 files")
    git(work, "push", "-q", "-u", "origin", "main")
    first_chunk = manifest_chunks(work, pointer_of(work, "HEAD:archive.bin").manifest)[0]

    # The hostile writer: a manifest whose second chunk only a lying pack claims, published with a
    # pending note and a pointer to it on main.
    r = Repo(str(bare))
    try:
        lost = hashlib.sha1(b"a chunk nobody has").hexdigest()
        hostile = r.write_object("blob", manifest_mod.encode([first_chunk, (lost, 2 * MiB)]))
        data = r.write_object("blob", b"not what the recipe says")    # in no ref: nobody can fetch it
        recipe = {"format": "git-panini-recipe/1", "size": 2 * MiB, "steps": [], "deps": [], "data": data,
                  "encoded_size": 24, "chunks": [[lost, 0, 2 * MiB]]}
        lying = r.write_object("blob", json.dumps(recipe).encode())

        def publish(editor):
            editor.set(manifest_path(hostile), hostile)
            editor.set(pack_path(lying), lying)
        Store(r).edit(publish, "hostile: a manifest and a pack that only claims its chunk")
        size = first_chunk[1] + 2 * MiB
        Notes(r).put({hostile: new_note(size, 2, 2, size)}, "hostile: pending")
    finally:
        r.close()
    _hostile_commit(bare, "hostile.bin", hostile, size)
    git(work, "fetch", "-q", "origin")

    proc = run(["git", "panini", "work", "--remote", "origin", "--effort", "0"], cwd=work, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    # Taken again while it has attempts left (the rest of the batch is done by then), then failed for good.
    assert proc.stdout.count(f"{hostile}: pack {lying} cannot be decoded") == 3, proc.stdout
    assert proc.stdout.startswith("52 file(s) worked, 3 failed")

    for where in (work, bare):
        notes = notes_of(where)
        assert len(notes) == 50
        done = [m for m, n in notes.items() if n["status"] == "completed"]
        assert len(done) == 49 and all(notes[m]["attempts"] == 0 and notes[m]["lease_until"] is None for m in done)
        bad = notes[hostile]
        assert bad["status"] == "failed" and bad["attempts"] == 3 and bad["lease_until"] is None
        assert bad["error"].startswith(f"pack {lying} cannot be decoded") and "\n" not in bad["error"]
    status = json.loads(run(["git", "panini", "status", "--rev", "origin/main", "--json"], cwd=work).stdout)["files"]
    by_path = {f["path"]: f for f in status}
    assert by_path["hostile.bin"]["status"] == "failed" and by_path["hostile.bin"]["error"] == bad["error"]
    assert {f["status"] for p, f in by_path.items() if p != "hostile.bin"} == {"completed"}
    table = run(["git", "panini", "status", "--rev", "origin/main"], cwd=work).stdout
    assert "hostile.bin" in table and "failed (pack" in table   # the table wraps the error over lines

    # The 49 read back from packs.
    for name in digests:
        (work / name).unlink()
    git(work, "checkout", "--", ".")
    assert {name: sha256_file(work / name) for name in digests} == digests


# --- leases -------------------------------------------------------------------------------------------------

def _slow_repo(tmp_path, remote: bool):
    """A repository (and with remote=True its bare remote) holding one 6 MiB text file, which packs
    for many seconds at effort 3. Returns (path, manifest, sha256)."""
    path = make_repo(tmp_path, track=("*.bin",))
    digest = sha256_file(write_text(path / "big.bin", 6 * MiB, seed=3))
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "big")
    git(path, "config", "panini.leaseSkew", "0")
    if remote:
        _, url = make_bare(tmp_path)
        git(path, "remote", "add", "origin", url)
        git(path, "push", "-q", "-u", "origin", "main")
    return path, pointer_of(path, "HEAD:big.bin").manifest, digest


def _start(path, *args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(["git", "panini", "work", *args], cwd=path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _wait_for_point(trace, point: str, proc):
    """Until the worker reaches a named point (git_panini/util/crash_points.py) while still running."""
    deadline = time.monotonic() + 120
    while point not in (trace.read_text().split() if trace.exists() else []):
        assert proc.poll() is None, f"the worker ended before {point}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"the worker never reached {point}"
        time.sleep(0.05)


def _wait_for_claim(path, manifest, proc) -> dict:
    deadline = time.monotonic() + 120
    while True:
        note = notes_of(path).get(manifest) or {}
        if note.get("status") == "processing":
            return note
        assert proc.poll() is None, f"the worker ended without claiming: {proc.communicate()}"
        assert time.monotonic() < deadline, "the worker never claimed the file"
        time.sleep(0.05)


def _stop(proc, sig) -> tuple[str, str]:
    """Signal the whole process group, as a terminal's Ctrl-C does; wait for the end. `git` passes the
    signal on to `git-panini`, waits for it, then ends by the signal itself: git-panini's own exit
    (130 when interrupted) shows only when git did not get the signal."""
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode in (130, -sig), (proc.returncode, out, err)
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_worker_hands_its_file_back_and_the_next_run_takes_it_at_once(tmp_path, sig):
    path, manifest, digest = _slow_repo(tmp_path, remote=False)
    trace = tmp_path / "points"
    proc = _start(path, "--no-remote", "--effort", "3", env={"PANINI_CRASH_TRACE": str(trace)})   # 15-minute lease
    note = _wait_for_claim(path, manifest, proc)
    assert note["pid"] != os.getpid() and note["prior"] == "pending"
    assert note["pid_started"].startswith(f"{note['pid']}:")   # its create time, for a reused pid
    _wait_for_point(trace, "packing", proc)
    out, err = _stop(proc, sig)
    assert "Traceback" not in err and "interrupted; 1 file(s) handed back" in err
    note = notes_of(path)[manifest]
    assert note["status"] == "pending" and note["attempts"] == 0 and note["lease_until"] is None
    assert note["worker"] is None and note["pid"] is None

    done = run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=path)
    assert done.stdout.startswith("1 file(s) worked, 0 failed")
    assert notes_of(path)[manifest]["status"] == "completed"
    (path / "big.bin").unlink()
    git(path, "checkout", "--", "big.bin")
    assert sha256_file(path / "big.bin") == digest


@pytest.mark.parametrize("remote", [False, True], ids=["no-remote", "remote"])
def test_a_renewed_lease_is_not_stolen_by_a_worker_started_after_it_would_have_expired(tmp_path, remote):
    path, manifest, _ = _slow_repo(tmp_path, remote)
    where = ["--remote", "origin"] if remote else ["--no-remote"]
    thief_path = path
    if remote:   # the second worker works in a clone of its own, through the remote
        thief_path = tmp_path / "thief"
        git(tmp_path, "clone", "-q", git(path, "remote", "get-url", "origin").stdout.strip(), str(thief_path))
        git(thief_path, "config", "panini.leaseSkew", "0")
    slow = _start(path, *where, "--effort", "3", "--lease", "2")
    first = _wait_for_claim(path, manifest, slow)
    wait = (_until(first) - datetime.now(timezone.utc)).total_seconds() + 1.5
    time.sleep(max(0.0, wait))
    assert slow.poll() is None, "the slow worker finished before its first lease ran out: make its file larger"

    thief = run(["git", "panini", "work", *where, "--effort", "0", "--lease", "2"], cwd=thief_path)
    assert thief.stdout.startswith("0 file(s) worked"), thief.stdout
    renewed = notes_of(thief_path if remote else path)[manifest]
    assert renewed["status"] == "processing" and renewed["worker"] == first["worker"]
    assert _until(renewed) > _until(first) and _until(renewed) > datetime.now(timezone.utc) - timedelta(seconds=1)

    out, err = _stop(slow, signal.SIGINT)
    assert "Traceback" not in err and "interrupted; 1 file(s) handed back" in err, err
    if remote:   # handed back on the remote too, through the same compare-and-swap
        git(thief_path, "fetch", "-q", "origin", "+refs/notes/panini:refs/notes/panini")
        assert notes_of(thief_path)[manifest]["status"] == "pending"


def test_a_dead_workers_lease_is_retaken_at_once_or_released_by_hand(tmp_path):
    path, manifest, digest = _slow_repo(tmp_path, remote=False)

    # Released by hand: `git panini work --release` names the file; a second call finds nothing.
    proc = _start(path, "--no-remote", "--effort", "3")
    held = _wait_for_claim(path, manifest, proc)
    _stop(proc, signal.SIGKILL)
    assert notes_of(path)[manifest]["status"] == "processing"
    out = run(["git", "panini", "work", "--release"], cwd=path).stdout
    assert f"released big.bin (held by {held['worker']}; now pending)" in out and "1 lease(s) released" in out
    assert notes_of(path)[manifest]["status"] == "pending" and notes_of(path)[manifest]["attempts"] == 0
    assert run(["git", "panini", "work", "--release"], cwd=path).stdout.strip() == "0 lease(s) released"

    # Retaken at once: the next run does not wait out the 15-minute lease of a process that is gone.
    proc = _start(path, "--no-remote", "--effort", "3")
    _wait_for_claim(path, manifest, proc)
    _stop(proc, signal.SIGKILL)
    done = run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=path)
    assert done.stdout.startswith("1 file(s) worked, 0 failed")
    assert notes_of(path)[manifest]["status"] == "completed" and notes_of(path)[manifest]["attempts"] == 0
    (path / "big.bin").unlink()
    git(path, "checkout", "--", "big.bin")
    assert sha256_file(path / "big.bin") == digest


def test_another_machines_lease_is_released_only_with_force(tmp_path):
    path = make_repo(tmp_path, track=("*.bin",))
    write_text(path / "a.bin", 10_000, seed=1)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "a")
    manifest = pointer_of(path, "HEAD:a.bin").manifest
    until = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime(TIME)
    r = Repo(str(path))
    try:
        publish_local(r)   # a.bin becomes pending work, as the first `git panini work` makes it
        Notes(r).transition([manifest], lambda m, n: dict(n, status="processing", worker="elsewhere:42",
                                                          host="elsewhere", pid=42, lease_until=until, prior="failed",
                                                          attempts=1), "test: another machine's lease")
    finally:
        r.close()
    out = run(["git", "panini", "work", "--release"], cwd=path).stdout
    assert "kept a.bin: held by elsewhere:42 (another machine; --force releases it)" in out
    assert notes_of(path)[manifest]["status"] == "processing"
    out = run(["git", "panini", "work", "--release", "--force", "a.bin"], cwd=path).stdout
    assert "released a.bin (held by elsewhere:42; now failed)" in out
    note = notes_of(path)[manifest]
    assert note["status"] == "failed" and note["attempts"] == 1 and note["host"] is None   # no attempt counted


def test_bad_input_to_release_is_a_one_line_error(tmp_path):
    path = make_repo(tmp_path, track=("*.bin",))
    write_text(path / "a.bin", 10_000, seed=1)
    (path / "plain.txt").write_text("not a git-panini file\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "a")
    for args, message in ((["--release", "nosuch.bin"], "nosuch.bin: no git-panini file at this path in HEAD"),
                          (["--release", "plain.txt"], "plain.txt: no git-panini file at this path in HEAD"),
                          (["--release", "../outside"], "../outside: outside the repository"),
                          (["a.bin"], "PATH arguments and --force go with --release"),
                          (["--force"], "PATH arguments and --force go with --release")):
        proc = run(["git", "panini", "work", "--no-remote", *args], cwd=path, check=False)
        assert proc.returncode == 2 and proc.stderr.strip() == f"git-panini: {message}", (args, proc.stderr)
    git(path, "config", "panini.leaseSkew", "soon")
    proc = run(["git", "panini", "work", "--no-remote"], cwd=path, check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == "git-panini: panini.leaseSkew must be a number of seconds, not 'soon'"
