"""The pre-receive hook for self-hosted remotes (git_panini/hooks/server/pre-receive, docs/server.md), on a
real bare remote: honest clients and workers push as always; a collaborator's deletions and rewinds that
would lose data are refused; after gc everywhere a fresh clone reads every file."""

from __future__ import annotations

import shutil
from pathlib import Path

import git_panini
from conftest import MiB, clone, git, make_bare, make_repo, run, sha256_file, write_random

HOOK = Path(git_panini.__file__).parent / "hooks" / "server" / "pre-receive"


def _gc(*paths):
    for path in paths:
        git(path, "reflog", "expire", "--expire=now", "--all")
        git(path, "gc", "-q", "--prune=now")


def test_the_server_hook_refuses_what_would_lose_data_and_lets_honest_pushes_through(tmp_path):
    bare, url = make_bare(tmp_path)
    shutil.copy(HOOK, bare / "hooks" / "pre-receive")
    (bare / "hooks" / "pre-receive").chmod(0o755)

    work = make_repo(tmp_path, name="work", track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    write_random(work / "old.bin", 1 * MiB, seed=31)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "old")
    git(work, "push", "-q", "origin", "main")
    run(["git", "panini", "work", "--effort", "0"], cwd=work)     # packs, then deletes the raw batch: allowed
    assert not git(bare, "for-each-ref", "refs/panini/raw/").stdout.strip()
    write_random(work / "new.bin", 1 * MiB, seed=32)
    git(work, "add", "new.bin")
    git(work, "commit", "-q", "-m", "new")
    git(work, "push", "-q", "origin", "main")
    git(work, "tag", "v1")
    git(work, "push", "-q", "origin", "v1")
    digests = {name: sha256_file(work / name) for name in ("old.bin", "new.bin")}

    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(attacker))
    git(attacker, "fetch", "-q", "origin", "refs/panini/store:refs/panini/store", "refs/notes/panini:refs/notes/panini")
    raw = git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split()
    packs = git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/packs/").stdout.split()
    first_store = git(bare, "rev-list", "refs/panini/store").stdout.split()[-1]
    notes_parent = git(bare, "rev-parse", "refs/notes/panini~1").stdout.strip()
    blob = git(attacker, "hash-object", "-w", "--stdin", input="not a commit").stdout.strip()
    attacks = {
        "delete a raw batch no pack covers": [f":{raw[0]}"],
        "delete pack data": [f":{packs[0]}"],
        "rewind the store": ["--force", f"{first_store}:refs/panini/store"],
        "rewind the notes": ["--force", f"{notes_parent}:refs/notes/panini"],
        "delete the store": [":refs/panini/store"],
        "point the store at a blob": ["--force", f"{blob}:refs/panini/store"],
    }
    before = git(bare, "for-each-ref").stdout
    for what, spec in attacks.items():
        proc = git(attacker, "push", "origin", *spec, check=False)
        assert proc.returncode != 0, f"{what}: accepted"
        assert "git-panini: refused" in proc.stderr, f"{what}: {proc.stderr}"
    assert git(bare, "for-each-ref").stdout == before

    shutil.rmtree(work)
    _gc(bare, attacker)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    clone(url, tmp_path / "fresh")
    for name, digest in digests.items():
        assert sha256_file(tmp_path / "fresh" / name) == digest, name
