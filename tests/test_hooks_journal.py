"""The cheap hooks: journal replay after a crashed filter (post-commit), refetch after a failed smudge (post-merge)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from conftest import MiB, clone, git, make_bare, make_repo, run, sha256_file, write_random

from git_panini.repo import Repo
from git_panini.local import LocalStore
from git_panini.writer import IngestSession


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _crashed_session(repo_path, files: dict[str, bytes], lose: set[str]) -> list[str]:
    """Clean files as a filter would, flush their chunks, but never commit the store (the crash).
    Files in `lose` get their chunks dropped, as if the process died before its pack was written."""
    repo = Repo(str(repo_path))
    session = IngestSession(repo)
    pointers = []
    for name, data in files.items():
        pointers.append(session.clean([data], name))
        if name in lose:
            session.packs._pending.clear()   # the unwritten batch dies with the process
        else:
            session.packs.flush()
    session.journal._file.close()
    os.rename(session.journal.path, session.journal.path.rsplit("-", 1)[0] + f"-{_dead_pid()}")
    return pointers


def test_post_commit_replays_a_dead_filters_journal(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    kept, lost = os.urandom(200_000), os.urandom(200_000)
    _crashed_session(repo, {"kept.bin": kept, "lost.bin": lost}, lose={"lost.bin"})
    assert LocalStore(Repo(str(repo))).tip() is None  # the crash left no local-store commit
    (repo / "other.txt").write_text("hello\n")
    git(repo, "add", "other.txt")
    proc = git(repo, "commit", "-q", "-m", "anything")   # post-commit finds the journal
    assert "lost.bin: its data was lost with a crashed filter" in proc.stderr
    assert not [n for n in os.listdir(repo / ".git" / "panini") if n.startswith("journal-")]
    local = LocalStore(Repo(str(repo)))
    assert len(local.manifests()) == 1                  # kept.bin's manifest, recorded by the replay
    fsck = run(["git", "panini", "fsck", "--json"], cwd=repo).stdout
    assert '"local_manifests": 1' in fsck and '"ok": true' in fsck


def test_post_commit_is_silent_without_a_journal(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    write_random(repo / "a.bin", MiB)
    git(repo, "add", ".")
    proc = git(repo, "commit", "-q", "-m", "one")
    assert proc.stderr == ""


def test_a_git_add_killed_after_the_index_is_refused_at_commit_under_any_path(tmp_path):
    """kill -9 of `git add` (git and its filter) right after Git wrote the index, then gc: the staged
    pointer's data is gone. Every commit is refused, naming the file, until it is added again; renaming
    it (git mv) is no way around. A kill that came too late loses nothing: the commit reads back."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    index = repo / ".git" / "index"
    for attempt in range(6):
        name = f"big{attempt}.bin"
        digest = sha256_file(write_random(repo / name, 48 * MiB, seed=attempt))
        before = index.stat().st_mtime_ns
        proc = subprocess.Popen(["git", "add", name], cwd=repo, start_new_session=True)
        while index.stat().st_mtime_ns == before and proc.poll() is None:
            time.sleep(0.001)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        git(repo, "reflog", "expire", "--expire=now", "--all")
        git(repo, "gc", "-q", "--prune=now")
        commit = git(repo, "commit", "-q", "-m", name, check=False)
        if commit.returncode == 0:     # the filter had kept the data before the kill
            (repo / name).unlink()
            git(repo, "checkout", "--", name)
            assert sha256_file(repo / name) == digest
            continue
        assert f"git add --renormalize -- '{name}'" in commit.stderr, commit.stderr
        if git(repo, "commit", "-q", "-m", "again", check=False).returncode == 0:
            # Git's index refresh found the entry racily clean and cleaned the file again: the data is
            # kept again, and only then may the commit go through.
            (repo / name).unlink()
            _gc_and_checkout(repo, name)
            assert sha256_file(repo / name) == digest
            return
        # Edited, then renamed: the staged (lost) version is no longer what the working tree holds, so
        # Git's index refresh cannot store it again; the refusal must follow the pointer, not the path.
        with open(repo / name, "ab") as f:
            f.write(b"an edit after the kill\n")
        git(repo, "mv", name, "moved.bin")
        moved = git(repo, "commit", "-q", "-m", "moved", check=False)
        assert moved.returncode != 0 and "git add --renormalize -- 'moved.bin'" in moved.stderr, moved.stderr
        git(repo, "add", "--renormalize", "--", "moved.bin")
        git(repo, "commit", "-q", "-m", "kept")
        edited = sha256_file(repo / "moved.bin")
        (repo / "moved.bin").unlink()
        _gc_and_checkout(repo, "moved.bin")
        assert sha256_file(repo / "moved.bin") == edited != digest
        return
    raise AssertionError("six kills never landed between the index write and the filter's end")


def _gc_and_checkout(repo, path):
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    git(repo, "checkout", "--", path)


def test_post_merge_fetches_what_a_failed_smudge_missed(tmp_path):
    bare, url = make_bare(tmp_path)
    a = make_repo(tmp_path, name="a", track=("*.bin",))
    git(a, "remote", "add", "origin", url)
    write_random(a / "one.bin", 300_000, seed=1)
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "one")
    git(a, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"])
    b = tmp_path / "b"
    clone(url, b)
    run(["git", "panini", "install"], cwd=b)
    write_random(a / "two.bin", 300_000, seed=2)
    git(a, "add", "two.bin")
    git(a, "commit", "-q", "-m", "two")
    git(a, "push", "-q", "origin", "main")
    git(b, "fetch", "-q", "origin")                    # the branch, not the store
    moved = tmp_path / "moved.git"
    shutil.move(bare, moved)                            # the remote vanishes mid-way
    failed = git(b, "merge", "-q", "--ff-only", "origin/main", check=False)
    assert failed.returncode != 0
    assert "two.bin" in failed.stderr and "not in this repository" in failed.stderr
    assert (b / ".git" / "panini" / "needs-fetch").read_text() == "two.bin\n"
    shutil.move(moved, bare)
    git(b, "panini", "fetch")
    git(b, "merge", "-q", "--ff-only", "origin/main")   # post-merge: marker seen, nothing absent now
    assert not (b / ".git" / "panini" / "needs-fetch").exists()
    assert sha256_file(b / "two.bin") == sha256_file(a / "two.bin")
    assert git(b, "status", "--porcelain").stdout == ""


def test_post_checkout_refetches_files_left_absent(tmp_path):
    bare, url = make_bare(tmp_path)
    a = make_repo(tmp_path, name="a", track=("*.bin",))
    git(a, "remote", "add", "origin", url)
    write_random(a / "one.bin", 300_000, seed=3)
    git(a, "add", ".")
    git(a, "commit", "-q", "-m", "one")
    git(a, "push", "-q", "origin", "main")
    b = make_repo(tmp_path, name="b")
    git(b, "remote", "add", "origin", url)
    git(b, "fetch", "-q", "origin")
    git(b, "checkout", "-q", "-b", "work", "origin/main", check=False)   # no store yet: smudge fetches it
    assert sha256_file(b / "one.bin") == sha256_file(a / "one.bin")
    # A failed earlier smudge left a marker and an absent file: the next checkout's hook repairs it.
    (b / "one.bin").unlink()
    (b / ".git" / "panini").mkdir(exist_ok=True)
    (b / ".git" / "panini" / "needs-fetch").write_text("one.bin\n")
    git(b, "checkout", "-q", "work")
    assert sha256_file(b / "one.bin") == sha256_file(a / "one.bin")
    assert not (b / ".git" / "panini" / "needs-fetch").exists()
