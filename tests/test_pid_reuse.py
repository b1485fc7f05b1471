"""A dead filter's journal and kept packs survive a later, unrelated filter that gets the same pid: each
session runs as pid 1 of a fresh pid namespace (as `docker run ... git add` does), so the pids repeat."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import MiB, git, make_repo, run, write_random

NS = ["unshare", "-rpf", "--mount-proc"]

# A clean session that hands out its pointers, then dies (os._exit) or finishes normally.
SESSION = """
import os, sys
from git_panini.git.repo import Repo
from git_panini.gitio.writer import IngestSession
session = IngestSession(Repo("."))
for name in sys.argv[2:]:
    with open(name, "rb") as f:
        print(session.clean([f.read()], name).decode().split()[3], flush=True)
if sys.argv[1] == "die":
    os._exit(0)
session.finish()
"""


def _ns_ok() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(NS + ["true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _ns_ok(), reason="unprivileged pid namespaces are not available here")
def test_a_reused_pid_never_drops_a_dead_filters_journal_or_kept_packs(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    write_random(repo / "a.bin", 6 * MiB, seed=1)      # large: its own kept pack
    write_random(repo / "s.bin", 100_000, seed=2)      # small: in the WAL
    dead = run(NS + [sys.executable, "-c", SESSION, "die", "a.bin", "s.bin"], cwd=repo).stdout.split()
    panini = repo / ".git" / "panini"
    journals = sorted(p.name for p in panini.glob("journal-*"))
    keeps = sorted(p.name for p in (repo / ".git" / "objects" / "pack").glob("*.keep"))
    assert journals and journals[0].startswith("journal-1-") and keeps   # pid 1 in its namespace

    write_random(repo / "b.bin", 100_000, seed=3)
    run(NS + [sys.executable, "-c", SESSION, "finish", "b.bin"], cwd=repo)   # pid 1 again, finishes normally
    assert sorted(p.name for p in panini.glob("journal-*")) == journals, "the dead session's journal was dropped"
    assert sorted(p.name for p in (repo / ".git" / "objects" / "pack").glob("*.keep")) == keeps
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    # The dead session's pointers still find their data: the large file's pack is kept, the small file's
    # records are in its WAL, both waiting for a replay.
    assert git(repo, "cat-file", "-t", dead[0]).stdout.strip() == "blob"
    assert any(p.name.startswith("wal-1-") for p in panini.glob("wal-*"))
