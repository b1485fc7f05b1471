"""A push that uploads file data says so on a terminal, with git's own progress, as git-lfs shows its
uploads; piped (scripts, CI) it stays quiet."""

from __future__ import annotations

import os
import pty
import subprocess

from conftest import git, make_bare, make_repo, write_random


def _push_in_a_terminal(repo) -> tuple[int, str]:
    """`git push` with its stderr on a pseudo-terminal: (exit code, what the terminal showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["git", "push", "origin", "main"], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
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
