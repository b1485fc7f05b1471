"""Superseded packs are retired (git_panini/work/retire.py): a lineage pushed and worked version by version, as a
CI worker runs `git panini work` after each push, leaves packs that later ones hold again. The worker deletes
their data refs, and their recipes from the store, in the push that records what replaces them; only on the
strength of packs it decoded itself; readers whose store is older recover; the server hook lets exactly that
through; a kill -9 at any step loses nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import git_panini
from conftest import clone, git, ls_tree, make_bare, make_repo, run, sha256_file
from git_panini.git.objects import encode_commit
from git_panini.git.repo import Repo
from git_panini.git.tree_edit import TreeEditor
from git_panini.store import bulk
from git_panini.store.shared import PACK_REFS, STORE_REF, Store, bulk_list_path, pack_path

HOOK = Path(git_panini.__file__).parent / "hooks" / "server" / "pre-receive"
VERSIONS = 8


def _gc(*paths):
    for path in paths:
        git(path, "reflog", "expire", "--expire=now", "--all")
        git(path, "gc", "-q", "--prune=now")


def _hooked_remote(tmp_path) -> tuple[Path, str]:
    remote, url = make_bare(tmp_path)
    shutil.copy(HOOK, remote / "hooks" / "pre-receive")
    (remote / "hooks" / "pre-receive").chmod(0o755)
    return remote, url


def _pack_refs(path) -> dict[str, str]:
    out = git(path, "for-each-ref", "--format=%(objectname) %(refname)", PACK_REFS).stdout.split("\n")
    return {ref: oid for oid, ref in (line.split(" ", 1) for line in out if line)}


def _recipes(path) -> set[str]:
    return {oid for _, oid, _ in ls_tree(path, STORE_REF, "packs").values()}


class Lineage:
    """A binary file of random bytes (1 MiB), each version overwriting three runs of it."""

    def __init__(self, repo: Path, seed: int = 7, size: int = 1 << 20):
        self.repo, self.rng = repo, random.Random(seed)
        self.data = bytearray(self.rng.randbytes(size))
        self.versions: dict[str, str] = {}   # commit -> sha256 of the file there

    def commit(self):
        if self.versions:
            for _ in range(3):
                at = self.rng.randrange(len(self.data) - 100)
                self.data[at:at + 60] = self.rng.randbytes(60)
        (self.repo / "model.bin").write_bytes(self.data)
        git(self.repo, "add", "model.bin", ".gitattributes")
        git(self.repo, "commit", "-q", "-m", f"version {len(self.versions)}")
        git(self.repo, "push", "-q", "origin", "main")
        self.versions[git(self.repo, "rev-parse", "HEAD").stdout.strip()] = sha256_file(self.repo / "model.bin")


def _reads_every_version(path: Path, versions: dict[str, str]):
    for commit, digest in versions.items():
        git(path, "checkout", "-q", commit)
        assert sha256_file(path / "model.bin") == digest, commit
        assert not git(path, "status", "--porcelain").stdout.strip()


def test_a_lineage_worked_version_by_version_retires_what_newer_packs_hold(tmp_path):
    """Eight versions, each pushed then worked, to a remote with the server hook: pack refs and recipes
    that newer packs supersede go (fewer refs than work runs made), the hook lets those pushes through,
    and after gc everywhere a fresh clone, and a clone whose store predates the retirements (its recipes
    name data the server no longer has), read every version bit for bit."""
    remote, url = _hooked_remote(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    lineage = Lineage(repo)
    seen, seen_recipes, old = set(), set(), None
    for n in range(VERSIONS):
        lineage.commit()
        run(["git", "panini", "work"], cwd=repo)
        seen |= set(_pack_refs(remote))
        seen_recipes |= _recipes(remote)
        if n == 1:   # a reader that fetched the store now, and nothing newer until it reads again
            old = tmp_path / "old"
            clone(url, old)
            git(old, "config", "panini.cacheSize", "0")
            run(["git", "panini", "prune", "--cache-only"], cwd=old)
    refs, recipes = _pack_refs(remote), _recipes(remote)
    assert seen - set(refs) and seen_recipes - recipes, "no pack data ref was retired"
    assert not git(remote, "for-each-ref", "refs/panini/raw/").stdout.strip()
    stale = _recipes(old) - recipes   # recipes the old clone holds that the remote retired
    assert stale
    # The worker's own copies of what it retired go too; its store knows them as retired (it keeps the
    # recipes: merges only add).
    assert set(_pack_refs(repo)) == set(refs)

    _gc(remote, repo, old)
    stale_data = {json.loads(git(old, "cat-file", "-p", r).stdout)["data"] for r in stale}
    assert any(git(remote, "cat-file", "-e", d, check=False).returncode != 0 for d in stale_data)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)
    git(old, "fetch", "-q", "origin")
    _reads_every_version(old, lineage.versions)
    fsck = run(["git", "panini", "fsck", "--remote", "origin"], cwd=repo, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    # Nobody takes a retirement for a loss: a push from the old clone repairs nothing.
    (old / "note.txt").write_text("hello\n")
    git(old, "checkout", "-q", "-B", "main", "origin/main")
    git(old, "add", "note.txt")
    git(old, "commit", "-q", "-m", "note")
    pushed = git(old, "push", "-q", "origin", "main")
    assert "lost data" not in pushed.stderr
    assert _pack_refs(remote) == refs
    # A repair from the worker's clone, whose store keeps the retired recipes, puts none of them back.
    run(["git", "panini", "push", "--repair", "origin"], cwd=repo)
    assert _recipes(remote) == recipes and _pack_refs(remote) == refs


RUNNER = """
import sys
from git_panini.git.repo import Repo
from git_panini.work.worker import Worker
Worker(Repo("."), remote="origin").run()
"""


@pytest.mark.parametrize("point", ["retire-decided:2", "retired"])
def test_kill_9_while_retiring_loses_nothing(tmp_path, point):
    """The worker killed once it decided what to retire inside the push (before it), or once the push
    landed (before it forgets its own copies): after gc in both repositories a fresh clone reads every
    version, and the next run finishes the work."""
    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    lineage = Lineage(repo, seed=11, size=600_000)
    trace = tmp_path / "trace"
    for n in range(VERSIONS):   # until the first run that retires something, killed there
        lineage.commit()
        proc = subprocess.run([sys.executable, "-c", RUNNER], cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "PANINI_CRASH_AT": point, "PANINI_CRASH_TRACE": str(trace)})
        if proc.returncode != 0:
            break
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert trace.read_text().split()[-1] == point.split(":")[0]
    _gc(remote, repo)
    fresh = tmp_path / "killed"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)
    before = set(_pack_refs(remote))
    run(["git", "panini", "work"], cwd=repo)
    if point == "retire-decided:2":   # nothing went before the kill: the next run retires
        assert before - set(_pack_refs(remote))
    _gc(remote, repo)
    fsck = run(["git", "panini", "fsck", "--remote", "origin"], cwd=repo, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)


def _attacker(tmp_path, url) -> Path:
    path = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(path))
    git(path, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}", f"+{PACK_REFS}*:{PACK_REFS}*")
    return path


def _store_commit(path: Path, edit) -> str:
    """A child of the store tip whose tree is the tip's edited by edit(editor, repo)."""
    repo = Repo(str(path))
    try:
        tip = repo.ref(STORE_REF)
        editor = TreeEditor(repo, Store(repo).tree_of(tip))
        edit(editor, repo)
        commit = repo.write_object("commit", encode_commit(editor.write(), [tip], "panini: packs"))
        repo.git("update-ref", STORE_REF, commit)
        return commit
    finally:
        repo.close()


def test_a_lying_pack_never_makes_an_honest_worker_retire_a_good_one(tmp_path):
    """An attacker pushes a pack (its data held by a proven pack ref, its recipe and list in the store) that
    claims every chunk of the honest pack, in fewer bytes. Readers would choose it; a worker that took the
    recipe at its word would retire the honest pack. The worker decodes it first: the honest pack stays, the
    lie goes (the honest pack holds all it claims), and after gc a fresh clone reads the file."""
    remote, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    lineage = Lineage(repo, seed=3, size=400_000)
    lineage.commit()
    run(["git", "panini", "work"], cwd=repo)
    [honest] = _pack_refs(remote)
    [pack] = _recipes(remote)
    chunks = json.loads(git(repo, "cat-file", "-p", pack).stdout)["chunks"]

    attacker = _attacker(tmp_path, url)
    junk = os.urandom(100)
    lie = {"format": "git-panini-recipe/1", "size": sum(n for _, _, n in chunks), "steps": [], "deps": [],
           "encoded_size": len(junk), "chunks": chunks, "tried": []}

    def plant(editor, repo_):
        data = repo_.write_object("blob", junk)
        recipe = repo_.write_object("blob", json.dumps({**lie, "data": data}).encode())
        commit, listing = bulk.write_bulk(repo_, [data], bulk.PACK_MESSAGE)
        editor.set(pack_path(recipe), recipe)
        editor.set(bulk_list_path(commit), listing)
        repo_.git("update-ref", PACK_REFS + commit, commit)
        plant.ref = PACK_REFS + commit
    _store_commit(attacker, plant)
    git(attacker, "push", "-q", "origin", STORE_REF, plant.ref)

    run(["git", "panini", "work"], cwd=repo)
    assert set(_pack_refs(remote)) == {honest}   # the honest pack stays; the lying one, which it covers, went
    _gc(remote, repo)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)


def test_the_server_hook_lets_only_a_covered_pack_ref_go(tmp_path):
    """Against a real bare remote with the hook: a push that deletes a pack ref whose chunks nothing else
    holds is refused, so is one that drops a recipe while its data stays; deleting a pack ref whose every
    chunk another pack ref's pack yields, its recipe dropped in the same push, is accepted."""
    remote, url = _hooked_remote(tmp_path)
    repo = make_repo(tmp_path, track=("*.bin",))
    git(repo, "remote", "add", "origin", url)
    lineage = Lineage(repo, seed=5, size=300_000)
    lineage.commit()
    run(["git", "panini", "work", "--effort", "0"], cwd=repo)
    [honest] = _pack_refs(remote)
    [pack] = _recipes(remote)
    recipe = json.loads(git(repo, "cat-file", "-p", pack).stdout)

    attacker = _attacker(tmp_path, url)
    honest_commit = _pack_refs(attacker)[honest]

    def drop(editor, repo_):
        editor.remove(pack_path(pack))
        editor.remove(bulk_list_path(honest_commit))
    _store_commit(attacker, drop)
    refused = {"delete the only pack and its recipe": [f"{STORE_REF}:{STORE_REF}", f":{honest}"],
               "drop the recipe, keep its data": [f"{STORE_REF}:{STORE_REF}"],
               "delete the only pack": [f":{honest}"]}
    for what, specs in refused.items():
        proc = git(attacker, "push", "origin", *specs, check=False)
        assert proc.returncode != 0 and "git-panini: refused" in proc.stderr, what
    assert set(_pack_refs(remote)) == {honest} and _recipes(remote) == {pack}

    # A second copy of the pack's data under another ref and recipe (what a repack makes): now the first
    # ref may go, with its recipe.
    git(attacker, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}")
    data = bytes(lineage.data)   # the pack's segment decoded: the file's chunks in order

    def copy(editor, repo_):
        blob = repo_.write_object("blob", data + b"\0")   # another blob: the same chunks at the same offsets
        twin = repo_.write_object("blob", json.dumps({**recipe, "data": blob, "size": len(data) + 1,
                                                      "encoded_size": len(data) + 1, "steps": [],
                                                      "deps": []}).encode())
        commit, listing = bulk.write_bulk(repo_, [blob], bulk.PACK_MESSAGE)
        editor.set(pack_path(twin), twin)
        editor.set(bulk_list_path(commit), listing)
        repo_.git("update-ref", PACK_REFS + commit, commit)
        copy.ref = PACK_REFS + commit
        editor.remove(pack_path(pack))
        editor.remove(bulk_list_path(honest_commit))
    _store_commit(attacker, copy)
    git(attacker, "push", "-q", "--atomic", "origin", f"{STORE_REF}:{STORE_REF}", copy.ref, f":{honest}")
    assert set(_pack_refs(remote)) == {copy.ref}

    _gc(remote)
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    _reads_every_version(fresh, lineage.versions)
