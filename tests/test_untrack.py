"""`untrack` says what becomes of stored files and can stage their real bytes; `verify` catches stranded pointers."""

from __future__ import annotations

import json
import os
import time

from conftest import clone, git, make_bare, make_repo, run, sha256_file, write_random


def _stored_repo(tmp_path):
    _, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    write_random(repo / "big.bin", 200_000, seed=7)
    write_random(repo / "other.dat", 1000, seed=8)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "stored")
    return repo, url


def test_untrack_then_commit_is_caught_by_verify(tmp_path):
    repo, url = _stored_repo(tmp_path)
    # An index entry that is not racily clean: `commit -a` trusts its stat data and keeps the pointer (a
    # racy one would be read again, now without a filter: the real bytes, and nothing to catch).
    old = time.time() - 100
    os.utime(repo / "big.bin", (old, old))
    git(repo, "update-index", "-q", "--refresh")
    proc = run(["git", "panini", "untrack", "*.bin"], cwd=repo)
    assert "1 file(s) no longer tracked are stored as pointers" in proc.stdout
    assert "next commit would store the pointer text" in proc.stdout and "--renormalize" in proc.stdout
    git(repo, "commit", "-q", "-am", "untrack")
    # What a clone gets: the pointer text as the file.
    assert git(repo, "cat-file", "blob", "HEAD:big.bin", binary=True).stdout.startswith(b"version git-panini/1\n")
    proc = run(["git", "panini", "verify"], cwd=repo, check=False)
    assert proc.returncode == 1
    assert "FAIL big.bin: a checkout of" in proc.stdout and "filter=panini" in proc.stdout
    report = json.loads(run(["git", "panini", "verify", "--json"], cwd=repo, check=False).stdout)
    assert not report["ok"] and [f["path"] for f in report["files"] if not f["ok"]] == ["big.bin"]
    # The commit before the untrack is fine; a range ending at the untrack commit is not.
    run(["git", "panini", "verify", "HEAD~1"], cwd=repo)
    assert run(["git", "panini", "verify", "HEAD~1..HEAD"], cwd=repo, check=False).returncode == 1


def test_untrack_renormalize_commits_the_real_bytes(tmp_path):
    repo, url = _stored_repo(tmp_path)
    real = sha256_file(repo / "big.bin")
    proc = run(["git", "panini", "untrack", "--renormalize", "*.bin"], cwd=repo)
    assert "staged the real bytes of 1 file(s)" in proc.stdout
    git(repo, "commit", "-q", "-m", "untrack")
    assert git(repo, "cat-file", "-s", "HEAD:big.bin").stdout.strip() == "200000"
    assert git(repo, "cat-file", "blob", "HEAD:.gitattributes").stdout == ""
    run(["git", "panini", "verify"], cwd=repo)
    run(["git", "panini", "verify", "--all"], cwd=repo)
    git(repo, "push", "-q", "origin", "main")
    # A clone without any git-panini configuration gets the real bytes at the tip.
    plain = tmp_path / "plain"
    clone(url, plain)
    assert sha256_file(plain / "big.bin") == real


def test_renormalize_after_a_plain_untrack_and_skips_pointer_text(tmp_path):
    repo, _ = _stored_repo(tmp_path)
    run(["git", "panini", "untrack", "*.bin"], cwd=repo)
    write_random(repo / "second.bin", 5000, seed=9)
    # A file whose working-tree copy is the pointer text itself cannot be renormalized from here.
    (repo / "second.bin").write_bytes(git(repo, "cat-file", "blob", "HEAD:big.bin", binary=True).stdout)
    git(repo, "add", "second.bin")
    proc = run(["git", "panini", "untrack", "--renormalize", "*.bin"], cwd=repo, check=False)
    assert proc.returncode == 1
    assert "untracked 0 pattern(s)" in proc.stdout and "staged the real bytes of 1 file(s)" in proc.stdout
    assert "not staged: second.bin holds pointer text" in proc.stdout
    assert git(repo, "ls-files", "-s", "big.bin").stdout.split()[1] == git(repo, "hash-object", "--no-filters",
                                                                           "big.bin").stdout.strip()
