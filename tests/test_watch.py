"""`git panini work --watch`, the polling worker: real repositories, a real bare remote, a real watcher process.

- Work pushed from another clone while the watcher runs is completed on the remote; SIGTERM in the
  middle of a round hands the lease back (the file is pending again, no attempt counted) and exits 0.
- An unreachable remote is one line per round, no traceback, and the watcher keeps going: once the
  remote is there, the next round completes its pending file.
- A signal while it sleeps ends it at once: SIGTERM with exit 0, Ctrl-C (SIGINT) with 130.
- Bad values of --interval and --max-idle are usage errors (exit 2). (--max-idle ending the watch:
  test_notebook.py, whose notebook runs with it.)
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time

import pytest

from conftest import MiB, clone, git, make_bare, make_repo, notes_of, pointer_of, run, sha256_file, write_text


class Watcher:
    """A running `git-panini work --watch` (the console script itself, so its exit code is its own),
    its stdout and stderr lines collected as they come."""

    def __init__(self, cwd, *args):
        self.proc = subprocess.Popen(["git-panini", "work", "--watch", *args], cwd=cwd, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.out.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _read(stream, put):
        for line in stream:
            put(line.rstrip("\n"))

    def next_round(self, timeout: float = 60) -> dict:
        """The next round's JSON object."""
        try:
            return json.loads(self.out.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"no round within {timeout} s; stderr: {self.err[-5:]}") from None

    def stop(self, sig=signal.SIGTERM) -> tuple[int, list[str]]:
        """Signal the watcher; (its exit code, the stdout lines not read yet)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        time.sleep(0.1)   # the reader threads take the last lines
        rest = []
        while not self.out.empty():
            rest.append(self.out.get())
        return code, rest

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _wait_for(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def fresh_clone_verifies(tmp_path, url: str, digests: dict[str, str]):
    """A fresh clone (the filter from ~/.gitconfig) checks out every file bit-identical, and
    `git panini verify --all` agrees."""
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    assert {name: sha256_file(fresh / name) for name in digests} == digests
    out = run(["git", "panini", "verify", "--all"], cwd=fresh).stdout
    assert f"{len(digests)} of {len(digests)} file(s) verified bit-perfect" in out, out


def _add(path, name: str, size: int, seed: int) -> tuple[str, str]:
    """Commit and push a text file; (its manifest, its sha256)."""
    digest = sha256_file(write_text(path / name, size, seed=seed))
    git(path, "add", name)
    git(path, "commit", "-q", "-m", name)
    git(path, "push", "-q", "origin", "main")
    return pointer_of(path, f"HEAD:{name}").manifest, digest


@pytest.fixture
def project(tmp_path):
    """(a repository tracking *.bin, pushed to a bare remote; the bare's path; its url)."""
    path = make_repo(tmp_path, track=("*.bin",))
    git(path, "add", ".gitattributes")
    git(path, "commit", "-q", "-m", "track *.bin")
    bare, url = make_bare(tmp_path)
    git(path, "remote", "add", "origin", url)
    git(path, "push", "-q", "-u", "origin", "main")
    return path, bare, url


def test_the_watcher_completes_work_pushed_while_it_runs_and_sigterm_hands_its_lease_back(tmp_path, project):
    path, bare, url = project
    clone(url, tmp_path / "worker")
    # effort 3: the large file below packs for seconds, long enough to stop the watcher in the middle
    watcher = Watcher(tmp_path / "worker", "--interval", "0.2", "--json", "--effort", "3")
    try:
        first = watcher.next_round()
        assert first["files"] == 0 and first["error"] is None   # running, nothing to do yet

        small, small_digest = _add(path, "small.bin", 32 << 10, seed=1)
        _wait_for(lambda: (notes_of(bare).get(small) or {}).get("status") == "completed", "small.bin completed")
        worked = watcher.next_round()
        while worked["files"] == 0:
            worked = watcher.next_round()
        assert worked["files"] == 1 and worked["failed"] == 0 and worked["packed_bytes"] == 32 << 10
        assert 0 < worked["stored_bytes"] < worked["packed_bytes"] and worked["bytes_per_second"] > 0

        big, big_digest = _add(path, "big.bin", 2 * MiB, seed=2)
        _wait_for(lambda: (notes_of(bare).get(big) or {}).get("status") == "processing", "big.bin claimed")
        held = notes_of(bare)[big]
        assert held["pid"] == watcher.proc.pid
        code, rest = watcher.stop(signal.SIGTERM)
    finally:
        watcher.kill()
    assert code == 0, (code, watcher.err)
    assert not any("Traceback" in line for line in watcher.err), watcher.err
    summary = json.loads(rest[-1])
    assert summary["handed_back"] == 1 and summary["summary"]["stopped"] == "SIGTERM"
    assert summary["summary"]["files"] == 1
    note = notes_of(bare)[big]
    assert note["status"] == "pending" and note["attempts"] == 0 and note["lease_until"] is None
    assert note["pid"] is None and note["worker"] is None
    assert notes_of(bare)[small]["status"] == "completed"

    fresh_clone_verifies(tmp_path, url, {"small.bin": small_digest, "big.bin": big_digest})


def test_an_unreachable_remote_is_one_line_per_round_and_the_watcher_keeps_going(tmp_path, project):
    path, bare, url = project
    manifest, digest = _add(path, "a.bin", 64 << 10, seed=3)
    later = tmp_path / "later.git"                       # not there yet
    git(path, "remote", "add", "later", later.resolve().as_uri())
    watcher = Watcher(path, "--remote", "later", "--interval", "0.2")
    try:
        _wait_for(lambda: len(watcher.err) >= 3, "three failed rounds")
        git(tmp_path, "clone", "-q", "--mirror", url, str(tmp_path / "staging.git"))
        (tmp_path / "staging.git").rename(later)   # the remote comes back, whole at once
        out = [watcher.out.get(timeout=60)]   # the round that found the remote and worked the file
        code, rest = watcher.stop(signal.SIGTERM)
        out += rest
    finally:
        watcher.kill()
    assert code == 0
    failures = [line for line in watcher.err if not line.startswith("segment of ")]   # the packing's own log
    assert len(failures) >= 3
    for number, line in enumerate(failures, 1):
        assert line.startswith(f"git-panini: round {number} failed: fetching from 'later' failed: ")
        assert line.endswith("; next try in 0.2 s")
    assert not any("Traceback" in line for line in watcher.err), watcher.err
    assert out[0].startswith(f"round {len(failures) + 1}: 1 file(s) worked, 0 failed; 64.0 KiB -> "), out
    # One per round number (a round cut short by SIGTERM prints none; the line read before the stop may come
    # back again with the rest of the output).
    rounds = {line.split(":", 1)[0] for line in out if line.startswith("round ")}
    assert out[-1].startswith(f"watched {len(rounds) + len(failures)} round(s) ({len(failures)} failed), "
                              "stopped by SIGTERM: 1 file(s) worked"), out
    assert notes_of(later)[manifest]["status"] == "completed"
    fresh_clone_verifies(tmp_path, later.resolve().as_uri(), {"a.bin": digest})


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_watcher_sleeps_ends_it_at_once(tmp_path, sig, code):
    path = make_repo(tmp_path)
    watcher = Watcher(path, "--no-remote", "--interval", "600", "--json")
    try:
        assert watcher.next_round()["files"] == 0   # asleep now, for ten minutes
        started = time.monotonic()
        exit_code, rest = watcher.stop(sig)
    finally:
        watcher.kill()
    assert exit_code == code and time.monotonic() - started < 30, (exit_code, watcher.err)
    summary = json.loads(rest[-1])
    assert summary["summary"]["stopped"] == sig.name and summary["summary"]["rounds"] == 1
    assert not any("Traceback" in line for line in watcher.err), watcher.err


def test_bad_watch_options_are_usage_errors(tmp_path):
    path = make_repo(tmp_path, install=False)
    for args in (["--watch", "--interval", "soon"], ["--watch", "--interval", "nan"], ["--watch", "--max-idle", "0"],
                 ["--interval", "5"], ["--watch", "-j", "2"]):
        done = run(["git-panini", "work", *args], cwd=path, check=False)
        assert done.returncode == 2, (args, done.returncode, done.stderr)
        assert done.stderr.startswith("git-panini: ") and len(done.stderr.splitlines()) == 1, (args, done.stderr)
        assert done.stdout == "", args
