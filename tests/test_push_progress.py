"""A push that uploads file data says so on a terminal, with git's own progress, as git-lfs shows its
uploads; a clone says what it fetched on a line of its own, never on git's progress line; piped (scripts,
CI) both stay quiet."""

from __future__ import annotations

import os
import pty
import subprocess

from conftest import git, make_bare, make_repo, run, sha256_file, write_random


def _push_in_a_terminal(repo) -> tuple[int, str]:
    return _in_a_terminal(["git", "push", "origin", "main"], repo)


def _in_a_terminal(args: list[str], cwd) -> tuple[int, str]:
    """The command with its stderr on a pseudo-terminal: (exit code, what the terminal showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            block = os.read(leader, 4096)
        except OSError:   # the terminal closed: every process holding it is gone
            break
        if not block:
            break
        shown.extend(block)
    os.close(leader)
    return proc.wait(), shown.decode(errors="replace")


def test_push_shows_what_it_uploads_on_a_terminal_and_nothing_when_piped(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    remote, url = make_bare(tmp_path)
    git(repo, "remote", "add", "origin", url)
    write_random(repo / "a.bin", 3 << 20, seed=1)
    git(repo, "add", ".gitattributes", "a.bin")
    git(repo, "commit", "-q", "-m", "a")
    code, shown = _push_in_a_terminal(repo)
    assert code == 0, shown
    assert "git-panini: uploading " in shown and " new chunk(s), 3.0 MiB, to origin" in shown, shown
    assert "Writing objects: 100%" in shown, shown
    assert git(remote, "for-each-ref", "refs/panini/raw").stdout

    write_random(repo / "b.bin", 1 << 20, seed=2)
    git(repo, "add", "b.bin")
    git(repo, "commit", "-q", "-m", "b")
    piped = git(repo, "push", "-q", "origin", "main")
    assert "git-panini: uploading" not in piped.stderr and "Writing objects" not in piped.stderr


def test_a_clone_says_what_it_fetched_on_a_line_of_its_own(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    remote, url = make_bare(tmp_path)
    git(repo, "remote", "add", "origin", url)
    digests = {n: sha256_file(write_random(repo / n, 1 << 20, seed=i)) for i, n in enumerate(("a.bin", "b.bin"))}
    git(repo, "add", ".gitattributes", *digests)
    git(repo, "commit", "-q", "-m", "ab")
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    code, shown = _in_a_terminal(["git", "clone", url, str(tmp_path / "seen")], tmp_path)
    assert code == 0, shown
    lines = shown.replace("\r\n", "\n").split("\n")
    said = [line for line in lines if "git-panini: fetched the data of 2 file(s)" in line]
    assert len(said) == 1, shown
    # what precedes it on the terminal line is cleared (\r, erase line), never left beside it
    assert said[0].split("git-panini:")[0].endswith("\r\x1b[K"), repr(said[0])
    assert all(sha256_file(tmp_path / "seen" / n) == d for n, d in digests.items())
    piped = run(["git", "clone", url, str(tmp_path / "piped")], cwd=tmp_path)
    assert "git-panini:" not in piped.stderr
