"""The cheap hooks: journal replay after a crashed filter (post-commit), refetch after a failed smudge (post-merge)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import MiB, clone, git, make_bare, make_repo, manifest_chunks, run, sha256_file, write_random

from git_panini.git.repo import Repo
from git_panini.store.local import LocalStore
from git_panini.format.pointer import Pointer, parse as parse_pointer


# A clean filter session that stores files and then dies (os._exit: no store commit, no cleanup), in
# its own process, so its journal and .keep files name a process that is really gone.
CRASHING_SESSION = """
import os, sys
from git_panini.git.repo import Repo
from git_panini.gitio.writer import IngestSession
session = IngestSession(Repo("."))
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        print(session.clean([f.read()], name).decode().split()[3], flush=True)
os._exit(0)
"""


def _crashed_session(repo_path, names: list[str]) -> dict[str, str]:
    """{name: manifest} of files a filter session cleaned (pointers handed out) before it died."""
    out = run([sys.executable, "-c", CRASHING_SESSION, *names], cwd=repo_path).stdout
    return {name: line.strip() for name, line in zip(names, out.splitlines())}


def _keeps(repo) -> list[str]:
    return sorted(p.name for p in (repo / ".git" / "objects" / "pack").glob("*.keep"))


def _pack_of(repo, oid: str) -> Path:
    for idx in (repo / ".git" / "objects" / "pack").glob("*.idx"):
        if oid in git(repo, "show-index", input=idx.read_bytes()).stdout:
            return idx.with_suffix("")
    raise AssertionError(f"{oid} is in no pack")


def _wal(repo) -> Path:
    (wal,) = (repo / ".git" / "panini").glob("wal-*")
    return wal


def test_a_dead_filters_data_survives_gc_and_post_commit_replays_it(tmp_path):
    """The session died after handing out three pointers: the small files' data is in its WAL (outside the
    object store, so gc never sees it), the large file's in a pack with a .keep file, so gc keeps both; the
    next commit writes the WAL into a pack, records the files and lets the .keep files go. A file whose data
    is gone anyway (a damaged disk: the large file's pack deleted, the WAL cut inside the last file's
    records) is named for re-adding, never recorded."""
    repo = make_repo(tmp_path, track=("*.bin",))
    write_random(repo / "kept.bin", 200_000, seed=1)
    write_random(repo / "big.bin", 5 * MiB, seed=3)
    write_random(repo / "lost.bin", 200_000, seed=2)
    manifests = _crashed_session(repo, ["kept.bin", "big.bin", "lost.bin"])
    assert LocalStore(Repo(str(repo))).tip() is None  # the crash left no local-store commit
    assert len(_keeps(repo)) == 1                      # big.bin's pack; the small files are in the WAL
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "cat-file", "-t", manifests["big.bin"]).stdout.strip() == "blob"
    assert git(repo, "cat-file", "-e", manifests["kept.bin"], check=False).returncode != 0   # only in the WAL
    big_pack = _pack_of(repo, manifests["big.bin"])
    for ext in (".idx", ".pack", ".keep"):
        big_pack.with_suffix(ext).unlink()
    wal = _wal(repo)
    cut = wal.read_bytes().index((repo / "lost.bin").read_bytes()[:4096])   # lost.bin's records on
    with open(wal, "r+b") as f:
        f.truncate(cut)
    (repo / "other.txt").write_text("hello\n")
    git(repo, "add", "other.txt")
    proc = git(repo, "commit", "-q", "-m", "anything")   # post-commit finds the journal
    assert "lost.bin: its data was lost with a crashed filter" in proc.stderr
    assert "big.bin: its data was lost with a crashed filter" in proc.stderr
    assert "kept.bin" not in proc.stderr
    assert not [n for n in os.listdir(repo / ".git" / "panini") if n.startswith(("journal-", "wal-"))]
    assert _keeps(repo) == []
    local = LocalStore(Repo(str(repo)))
    assert local.manifests() == [manifests["kept.bin"]]   # recorded by the replay
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    fsck = run(["git", "panini", "fsck", "--json"], cwd=repo).stdout
    assert '"local_manifests": 1' in fsck and '"ok": true' in fsck
    digest = sha256_file(repo / "kept.bin")
    git(repo, "add", "kept.bin")   # its chunks: deduplicated against what the replay kept
    git(repo, "commit", "-q", "-m", "kept")
    (repo / "kept.bin").unlink()
    _gc_and_checkout(repo, "kept.bin")
    assert sha256_file(repo / "kept.bin") == digest


def test_replay_trusts_chunks_a_worker_packed_since(tmp_path):
    """A session deduplicated against chunks the local store kept, then died; a worker packed those
    chunks and gc freed their raw blobs. The journal's file is readable (through the pack): replay
    records it, it is not reported lost, and its manifest stays."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    base = write_random(repo / "a.bin", 3 * MiB, seed=5).read_bytes()
    git(repo, "add", "a.bin")
    git(repo, "commit", "-q", "-m", "a")
    (repo / "b.bin").write_bytes(base + b"a tail of its own\n")
    manifest = _crashed_session(repo, ["b.bin"])["b.bin"]
    run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=repo)
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    # b.bin's manifest is in the dead session's WAL until the replay; it shares all but a.bin's last chunk.
    a_manifest = parse_pointer(git(repo, "cat-file", "blob", "HEAD:a.bin").stdout.encode()).manifest
    shared = [c for c, _ in manifest_chunks(repo, a_manifest)][:-1]
    assert git(repo, "cat-file", "--batch-check", input="".join(c + "\n" for c in shared)).stdout.count("missing") \
        == len(shared), "the worker left raw copies of the shared chunks"
    git(repo, "add", "b.bin")
    proc = git(repo, "commit", "-q", "-m", "b")
    assert "lost" not in proc.stderr, proc.stderr
    assert manifest in LocalStore(Repo(str(repo))).manifests()
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    (repo / "b.bin").unlink()
    git(repo, "checkout", "--", "b.bin")
    assert (repo / "b.bin").read_bytes() == base + b"a tail of its own\n"


def test_post_commit_is_silent_without_a_journal(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    write_random(repo / "a.bin", MiB)
    git(repo, "add", ".")
    proc = git(repo, "commit", "-q", "-m", "one")
    assert proc.stderr == ""


def test_a_live_filters_journal_starts_no_python_in_the_commit_hooks(tmp_path):
    """A journal of a filter that is still running (journal-<pid>-<token>) is no reason to start Python on
    a commit: the shell hooks must read the pid from its name (they took the token, so a quarter of commits
    paid ~2 s of Python in pre- and post-commit)."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    live = subprocess.Popen(["sleep", "300"])
    try:
        panini = repo / ".git" / "panini"
        panini.mkdir(exist_ok=True)
        for name in (f"journal-{live.pid}-1f2e3d4c", f"journal-{live.pid}-5a6b7c8d.123456"):
            (panini / name).write_bytes(b"")
        calls = tmp_path / "calls"
        wrapper = tmp_path / "bin"
        wrapper.mkdir()
        real = shutil.which("git-panini")
        (wrapper / "git-panini").write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{real}" "$@"\n')
        (wrapper / "git-panini").chmod(0o755)
        (repo / "a.txt").write_text("a")
        git(repo, "add", "a.txt")
        run(["git", "commit", "-q", "-m", "a"], cwd=repo, env={"PATH": f"{wrapper}{os.pathsep}{os.environ['PATH']}"})
        assert not calls.exists() or "hook" not in calls.read_text(), calls.read_text()
    finally:
        live.kill()
        live.wait()


def _add_killed_after_the_index_write(repo, name: str):
    """`git add name`, killed -9 (git and its filter) right after Git wrote the index."""
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    proc = subprocess.Popen(["git", "add", name], cwd=repo, start_new_session=True)
    while index.stat().st_mtime_ns == before and proc.poll() is None:
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_git_add_killed_after_the_index_write_loses_nothing(tmp_path):
    """kill -9 of `git add` right after Git wrote the index, then gc at once: the staged pointer's data was
    on disk (a kept pack named in the journal) before the pointer left the filter, so the commit goes
    through and reads back bit-identical."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    for attempt in range(3):
        name = f"big{attempt}.bin"
        digest = sha256_file(write_random(repo / name, 24 * MiB, seed=attempt))
        _add_killed_after_the_index_write(repo, name)
        _gc(repo)
        commit = git(repo, "commit", "-q", "-m", name, check=False)
        assert commit.returncode == 0 and "lost" not in commit.stderr, commit.stderr
        assert not (repo / ".git" / "panini" / "lost").exists()
        (repo / name).unlink()
        _gc_and_checkout(repo, name)
        assert sha256_file(repo / name) == digest


def test_a_git_add_killed_before_its_session_commit_reads_back_before_any_hook(tmp_path):
    """The filter killed at a named point (util/crash_points) after handing its pointers to git but before
    its session's store commit: small files' data is only in its WAL. A checkout of the staged pointer
    (checkout-index, before any hook runs) must read it back: the smudge records the dead session first."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    digest = sha256_file(write_random(repo / "small.bin", 100 * 1024, seed=5))
    run(["git", "add", "small.bin"], cwd=repo, env={"PANINI_CRASH_AT": "session-end"}, check=False)
    assert git(repo, "ls-files", "-s", "small.bin").stdout, "git did not stage the pointer"
    assert list((repo / ".git" / "panini").glob("wal-*")), "the kill did not land before the session commit"
    _gc(repo)
    scratch = tmp_path / "scratch"
    git(repo, "checkout-index", f"--prefix={scratch}/", "--", "small.bin")
    assert sha256_file(scratch / "small.bin") == digest
    git(repo, "commit", "-q", "-m", "small")
    (repo / "small.bin").unlink()
    _gc_and_checkout(repo, "small.bin")
    assert sha256_file(repo / "small.bin") == digest


def test_a_staged_pointer_whose_data_is_gone_is_refused_at_commit_under_any_path(tmp_path):
    """The second line of defence: a staged pointer whose data is gone all the same (its pack deleted: a
    damaged disk, or a crash under git-panini before 0.3) is refused at every commit, naming the file,
    until it is added again; renaming it (git mv) is no way around."""
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    name = "big.bin"
    digest = sha256_file(write_random(repo / name, 8 * MiB, seed=7))
    # A filter that handed out the pointer and died; Git staged the pointer.
    manifest = _crashed_session(repo, [name])[name]
    pointer = Pointer(manifest, digest, (repo / name).stat().st_size).encode()
    blob = git(repo, "hash-object", "-w", "--no-filters", "--stdin", input=pointer).stdout.strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
    pack = _pack_of(repo, manifest)
    for ext in (".idx", ".pack", ".keep"):
        pack.with_suffix(ext).unlink()
    _gc(repo)
    # Edited since (else Git's index refresh would clean the file again and so store it again): the staged,
    # lost version is no longer what the working tree holds.
    with open(repo / name, "ab") as f:
        f.write(b"an edit after the kill\n")
    commit = git(repo, "commit", "-q", "-m", name, check=False)
    assert commit.returncode != 0 and f"git add --renormalize -- '{name}'" in commit.stderr, commit.stderr
    # Renamed: the refusal follows the pointer, not the path.
    git(repo, "mv", name, "moved.bin")
    moved = git(repo, "commit", "-q", "-m", "moved", check=False)
    assert moved.returncode != 0 and "git add --renormalize -- 'moved.bin'" in moved.stderr, moved.stderr
    git(repo, "add", "--renormalize", "--", "moved.bin")
    git(repo, "commit", "-q", "-m", "kept")
    edited = sha256_file(repo / "moved.bin")
    (repo / "moved.bin").unlink()
    _gc_and_checkout(repo, "moved.bin")
    assert sha256_file(repo / "moved.bin") == edited != digest


def _gc(repo):
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")


def _gc_and_checkout(repo, path):
    _gc(repo)
    git(repo, "checkout", "--", path)


def test_a_merge_whose_smudge_cannot_fetch_leaves_a_pointer_that_checkout_brings_later(tmp_path):
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
    # The merge goes through (filter.panini.required is set): two.bin stays its pointer text, said in one line;
    # the post-merge hook tries a fetch for it, which fails too, and says so.
    merged = git(b, "merge", "-q", "--ff-only", "origin/main")
    assert "two.bin: left as its pointer" in merged.stderr and "not in this repository" in merged.stderr
    assert "fetching failed" in merged.stderr
    assert (b / "two.bin").read_bytes() == git(b, "cat-file", "blob", "HEAD:two.bin", binary=True).stdout
    assert git(b, "status", "--porcelain").stdout == ""
    status = run(["git", "panini", "status"], cwd=b)
    assert any(l.startswith("two.bin") and "missing" in l for l in status.stdout.splitlines()), status.stdout
    shutil.move(moved, bare)
    run(["git", "panini", "checkout"], cwd=b)           # the remote is back: fetched and checked out
    assert not (b / ".git" / "panini" / "needs-fetch").exists()
    assert sha256_file(b / "two.bin") == sha256_file(a / "two.bin")
    assert git(b, "status", "--porcelain").stdout == ""
    assert "missing" not in run(["git", "panini", "status"], cwd=b).stdout


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


def test_a_smudge_in_the_cleaning_filter_reads_what_only_its_wal_holds(tmp_path):
    """One filter process cleans a small file (its data goes to the session's WAL, not yet to any pack) and is
    then asked to smudge that very pointer, as a git command that cleans and checks out in one go may: it
    packs its WAL first and writes the file back."""
    from git_panini.git.pktline import PktReader, PktWriter
    repo = make_repo(tmp_path, track=("*.bin",))
    data = random.Random(4).randbytes(100_000)
    proc = subprocess.Popen(["git", "panini", "filter-process"], cwd=repo, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    out, inp = PktWriter(proc.stdin), PktReader(proc.stdout)
    out.text_list(["git-filter-client", "version=2"])
    out.text_list(["capability=clean", "capability=smudge"])
    assert inp.read_text_list() == ["git-filter-server", "version=2"]
    inp.read_text_list()

    def ask(command: str, content: bytes) -> tuple[list[str], bytes]:
        out.text_list([f"command={command}", "pathname=a.bin"])
        out.content(content)
        out.flush()
        status = inp.read_text_list()
        if status != ["status=success"]:
            return status, b""   # an error is the status alone
        body = b"".join(inp.read_content())
        inp.read_text_list()
        return status, body

    status, pointer = ask("clean", data)
    assert status == ["status=success"]
    manifest = parse_pointer(pointer).manifest
    assert git(repo, "cat-file", "-e", manifest, check=False).returncode != 0   # only in the WAL so far
    assert ask("smudge", pointer) == (["status=success"], data)
    proc.stdin.close()
    assert proc.wait() == 0
    assert manifest in LocalStore(Repo(str(repo))).manifests()
