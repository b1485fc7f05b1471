"""A collaborator with ordinary push access (plumbing only, every edit a fast-forward) cannot make honest
commands skip or delete data by what the remote's metadata claims (DESIGN.md §4: objects prove, metadata
claims). Each attack is pushed for real to a bare remote (file://, and smart HTTP for the push), and each
test ends with reflog expiry and `gc --prune=now` everywhere, the honest clone gone, and a fresh clone
that reads every committed file bit-identical."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import MiB, clone, git, make_bare, make_repo, manifest_chunks, notes_of, pointer_of, run, sha256_file, \
    write_random
from smart_http import serve_http_remote

from git_panini.git.objects import encode_commit
from git_panini.git.repo import Repo
from git_panini.store.chunk_index import ChunkIndex
from git_panini.store.shared import STORE_REF, Store, fan, manifest_path, pack_path, raw_list_path
from git_panini.git.tree_edit import TreeEditor

NOTES_REF = "refs/notes/panini"


def _gc(*paths):
    for path in paths:
        git(path, "reflog", "expire", "--expire=now", "--all")
        git(path, "gc", "-q", "--prune=now")


def _honest(tmp_path, url, name="honest"):
    work = make_repo(tmp_path, name=name, track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "attributes")
    git(work, "push", "-q", "origin", "main")
    return work


def _attacker(tmp_path, url) -> Repo:
    """A plain clone with the store and notes refs, edited with plumbing only (no filter, no hooks)."""
    path = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(path))
    git(path, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}", f"+{NOTES_REF}:{NOTES_REF}", check=False)
    return Repo(str(path))


def _push_edit(attacker: Repo, ref: str, edit, message="hostile"):
    """A fast-forward of `ref` on the remote: its tip plus edit(editor) applied to the tree."""
    tip = attacker.ref(ref)
    editor = TreeEditor(attacker, Store(attacker).tree_of(tip) if tip else None)
    edit(editor)
    commit = attacker.write_object("commit", encode_commit(editor.write(), [tip] if tip else [], message))
    attacker.git("update-ref", ref, commit)
    git(attacker.work_tree or attacker.git_dir, "push", "-q", "origin", f"{ref}:{ref}")


def _fresh_clone_reads(tmp_path, url, files: dict[str, str], name="fresh"):
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    dest = tmp_path / name
    clone(url, dest)
    for path, digest in files.items():
        assert sha256_file(dest / path) == digest, path
    return dest


def _manifest_bytes(tmp_path, data_file) -> bytes:
    """What the attacker predicts: the manifest git-panini makes of content it can guess, cleaned in a
    scratch repository of its own that never talks to the remote."""
    scratch = make_repo(tmp_path, name="scratch", track=("*.bin",))
    shutil.copy(data_file, scratch / "guess.bin")
    git(scratch, "add", "guess.bin")
    manifest = pointer_of(scratch, ":guess.bin").manifest
    return git(scratch, "cat-file", "blob", manifest, binary=True).stdout


@pytest.mark.parametrize("transport", ["file", "http"])
def test_a_forged_manifest_never_makes_an_honest_push_skip_its_data(tmp_path, transport):
    """Case 1: the attacker pushes to refs/panini/store a manifest listing the chunks of a file it can
    predict. The honest push of that file must still send every chunk: a listed manifest is a claim."""
    with serve_http_remote(tmp_path) as http:
        bare, url = (http.bare, http.url) if transport == "http" else make_bare(tmp_path)
        work = _honest(tmp_path, url)
        data = write_random(tmp_path / "predictable.bin", 3 * MiB, seed=11)
        forged = _manifest_bytes(tmp_path, data)

        attacker = _attacker(tmp_path, url)
        manifest = attacker.write_object("blob", forged)
        _push_edit(attacker, STORE_REF, lambda e: e.set(manifest_path(manifest), manifest))

        shutil.copy(data, work / "big.bin")
        git(work, "add", "big.bin")
        git(work, "commit", "-q", "-m", "big")
        git(work, "push", "-q", "origin", "main")
        assert pointer_of(work, "HEAD:big.bin").manifest == manifest   # the forgery named the honest file
        digest = sha256_file(work / "big.bin")

        shutil.rmtree(work)   # the honest clone is gone: only the remote can give the file back
        _gc(bare, attacker.git_dir)
        _fresh_clone_reads(tmp_path, url, {"big.bin": digest})


def _work_remote(path):
    run(["git", "panini", "work", "--effort", "0"], cwd=path)


def test_a_swapped_raw_list_never_makes_an_honest_worker_delete_the_batch(tmp_path):
    """Case 2: the attacker rewrites an honest batch's list to name one already-packed chunk and marks
    the file completed. An honest worker in a fresh clone must not retire that batch: its list no longer
    recomputes to the batch's commit, so it proves nothing."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)
    write_random(work / "old.bin", 1 * MiB, seed=1)
    git(work, "add", "old.bin")
    git(work, "commit", "-q", "-m", "old")
    git(work, "push", "-q", "origin", "main")
    _work_remote(work)                      # old.bin is packed; its raw batch retired
    packed_chunk = manifest_chunks(work, pointer_of(work, "HEAD:old.bin").manifest)[0][0]
    write_random(work / "new.bin", 1 * MiB, seed=2)
    git(work, "add", "new.bin")
    git(work, "commit", "-q", "-m", "new")
    git(work, "push", "-q", "origin", "main")
    new_manifest = pointer_of(work, "HEAD:new.bin").manifest
    digests = {name: sha256_file(work / name) for name in ("old.bin", "new.bin")}
    raw_refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split()
    assert len(raw_refs) == 1
    batch = raw_refs[0].rsplit("/", 1)[1]

    attacker = _attacker(tmp_path, url)
    swapped = attacker.write_object("blob", f"{packed_chunk}\n".encode())
    _push_edit(attacker, STORE_REF, lambda e: e.set(raw_list_path(batch), swapped))
    note = json.dumps({**notes_of(work)[new_manifest], "status": "completed"}, sort_keys=True).encode() + b"\n"
    blob = attacker.write_object("blob", note)
    _push_edit(attacker, NOTES_REF, lambda e: e.set(f"{new_manifest[:2]}/{new_manifest[2:]}", blob))

    shutil.rmtree(work)
    worker = tmp_path / "worker"
    clone(url, worker)                      # a CI worker: a fresh clone every time
    _work_remote(worker)
    assert raw_refs == git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split(), \
        "the worker deleted a raw batch that no verified pack covers"
    _gc(bare, attacker.git_dir, worker)
    _fresh_clone_reads(tmp_path, url, digests)


def test_a_lying_pack_never_marks_a_file_completed_unpacked(tmp_path):
    """Case 8: the attacker pushes a pack whose recipe claims the chunks of an honest file that its data
    does not yield (its data reachable from a pack ref). The worker must pack the file for real: a chunk
    counts as packed only through a pack this side decoded and re-hashed."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)
    write_random(work / "f.bin", 512 * 1024, seed=3)
    git(work, "add", "f.bin")
    git(work, "commit", "-q", "-m", "f")
    git(work, "push", "-q", "origin", "main")
    manifest = pointer_of(work, "HEAD:f.bin").manifest
    chunks = manifest_chunks(work, manifest)
    digest = sha256_file(work / "f.bin")

    attacker = _attacker(tmp_path, url)
    size = sum(s for _, s in chunks)
    data = attacker.write_object("blob", bytes(size))     # zeros: yields none of the claimed chunks
    offsets, at = [], 0
    for chunk, s in chunks:
        offsets.append([chunk, at, s])
        at += s
    recipe = {"format": "git-panini-recipe/1", "size": size, "steps": [], "deps": [], "data": data,
              "encoded_size": size, "chunks": offsets, "tried": []}
    lying = attacker.write_object("blob", json.dumps(recipe).encode())
    bulk_tree = TreeEditor(attacker, None)
    bulk_tree.set(fan(data), data)
    bulk = attacker.write_object("commit", encode_commit(bulk_tree.write(), [], "panini: pack data",
                                                        content_addressed=True))
    git(attacker.git_dir, "push", "-q", "origin", f"{bulk}:refs/panini/packs/{bulk}")
    _push_edit(attacker, STORE_REF, lambda e: e.set(pack_path(lying), lying))

    _work_remote(work)
    assert notes_of(work)[manifest]["status"] == "completed"
    repo = Repo(str(work))
    index = ChunkIndex(Store(repo))
    try:
        index.refresh()
        honest_packs = {p for c, _ in chunks for p, _, _, _ in index.locate(c) if p != lying}
        assert all(any(p != lying for p, _, _, _ in index.locate(c)) for c, _ in chunks), \
            "the file was marked completed though only the lying pack claims its chunks"
    finally:
        index.close()
        repo.close()
    assert honest_packs
    shutil.rmtree(work)
    _gc(bare, attacker.git_dir)
    _fresh_clone_reads(tmp_path, url, {"f.bin": digest})


def _two_files_worked(tmp_path, url):
    """An honest clone with old.bin packed by the worker (its raw batch retired) and new.bin raw."""
    work = _honest(tmp_path, url)
    write_random(work / "old.bin", 1 * MiB, seed=21)
    git(work, "add", "old.bin")
    git(work, "commit", "-q", "-m", "old")
    git(work, "push", "-q", "origin", "main")
    _work_remote(work)
    write_random(work / "new.bin", 1 * MiB, seed=22)
    git(work, "add", "new.bin")
    git(work, "commit", "-q", "-m", "new")
    git(work, "push", "-q", "origin", "main")
    return work, {name: sha256_file(work / name) for name in ("old.bin", "new.bin")}


def _fsck_remote(path) -> tuple[int, dict]:
    proc = run(["git", "panini", "fsck", "--remote", "origin", "--json"], cwd=path, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("damage", ["raw-deleted", "packs-deleted", "store-rewound"])
def test_a_damaged_remote_is_detected_and_repaired_from_a_clone_that_holds_the_data(tmp_path, damage):
    """Case 3: a force-push deletes refs/panini/raw/* or refs/panini/packs/*, or rewinds refs/panini/store.
    `fsck --remote` names the files the remote can no longer give back (exit 1); `push --repair` (or, for
    a deleted pack ref or a rewound store, the next plain push, which notices) puts them back."""
    bare, url = make_bare(tmp_path)
    work, digests = _two_files_worked(tmp_path, url)
    code, report = _fsck_remote(work)
    assert code == 0 and report["counts"]["missing"] == 0, [(f["path"], f["reason"]) for f in report["files"]]

    attacker = _attacker(tmp_path, url).git_dir
    if damage == "raw-deleted":
        for ref in git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split():
            git(attacker, "push", "-q", "origin", f":{ref}")
        lost = {"new.bin"}
    elif damage == "packs-deleted":
        for ref in git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/packs/").stdout.split():
            git(attacker, "push", "-q", "origin", f":{ref}")
        lost = {"old.bin"}
    else:   # back to the store's first commit, before the worker's recipes and lists
        first = git(bare, "rev-list", STORE_REF).stdout.split()[-1]
        git(attacker, "push", "-q", "--force", "origin", f"{first}:{STORE_REF}")
        lost = {"old.bin"}
    _gc(bare)
    code, report = _fsck_remote(work)
    missing = {f["path"] for f in report["files"] if f["verdict"] == "missing"}
    assert code == 1 and lost <= missing, report

    if damage == "raw-deleted":   # nothing tells a plain push: the repair is asked for
        proc = run(["git", "panini", "push", "--repair"], cwd=work)
    else:                         # the next push notices the lost pack ref or the rewound store itself
        (work / "later.txt").write_text("later")
        git(work, "add", "later.txt")
        git(work, "commit", "-q", "-m", "later")
        proc = git(work, "push", "-q", "origin", "main")
        assert "lost data" in proc.stderr, proc.stderr
    code, report = _fsck_remote(work)
    assert code == 0, report

    shutil.rmtree(work)
    _gc(bare, attacker)
    _fresh_clone_reads(tmp_path, url, digests)


def test_a_branch_named_like_a_pack_ref_proves_nothing(tmp_path):
    """ls-remote matches patterns against the end of a ref name: a branch refs/heads/refs/panini/packs/<c>
    holding predicted chunks (with its list in the store) must not spare the honest push; the attacker then
    deletes the branch."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)
    write_random(work / "first.bin", 64 * 1024, seed=40)   # so the remote has a store to forge in
    git(work, "add", "first.bin")
    git(work, "commit", "-q", "-m", "first")
    git(work, "push", "-q", "origin", "main")
    data = write_random(tmp_path / "predictable.bin", 1 * MiB, seed=41)
    scratch = make_repo(tmp_path, name="scratch", track=("*.bin",))
    shutil.copy(data, scratch / "guess.bin")
    git(scratch, "add", "guess.bin")
    chunks = [c for c, _ in manifest_chunks(scratch, pointer_of(scratch, ":guess.bin").manifest)]
    evil = Repo(str(scratch))
    from git_panini.store import bulk
    commit, listing = bulk.write_bulk(evil, chunks, bulk.PACK_MESSAGE)
    git(scratch, "fetch", "-q", url, f"+{STORE_REF}:{STORE_REF}")
    git(scratch, "push", "-q", url, f"{commit}:refs/heads/refs/panini/packs/{commit}")
    tip = evil.ref(STORE_REF)
    editor = TreeEditor(evil, Store(evil).tree_of(tip))
    editor.set(f"bulk/{commit[:2]}/{commit}", listing)
    forged = evil.write_object("commit", encode_commit(editor.write(), [tip], "hostile"))
    git(scratch, "push", "-q", url, f"{forged}:{STORE_REF}")

    shutil.copy(data, work / "big.bin")
    git(work, "add", "big.bin")
    git(work, "commit", "-q", "-m", "big")
    git(work, "push", "-q", "origin", "main")
    digest = sha256_file(work / "big.bin")
    git(scratch, "push", "-q", url, f":refs/heads/refs/panini/packs/{commit}")
    evil.close()
    shutil.rmtree(work)
    shutil.rmtree(scratch)
    _gc(bare)
    _fresh_clone_reads(tmp_path, url, {"big.bin": digest})


def test_a_store_claiming_format_1_is_not_converted(tmp_path):
    """The attacker fast-forwards the store to a tree whose config line says format 1. A fresh clone's
    honest push must not treat it as a format-1 snapshot (converting drops every recipe and list)."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)
    write_random(work / "a.bin", 1 * MiB, seed=51)
    git(work, "add", "a.bin")
    git(work, "commit", "-q", "-m", "a")
    git(work, "push", "-q", "origin", "main")
    _work_remote(work)
    digests = {"a.bin": sha256_file(work / "a.bin")}

    attacker = _attacker(tmp_path, url)
    config = git(attacker.git_dir, "cat-file", "blob", f"{STORE_REF}:config").stdout.splitlines()
    lying = attacker.write_object("blob", ("\n".join(["format git-panini-store/1", *config[1:]]) + "\n").encode())
    _push_edit(attacker, STORE_REF, lambda e: e.set("config", lying))
    shutil.rmtree(work)

    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    second = tmp_path / "second"
    clone(url, second)
    write_random(second / "b.bin", 512 * 1024, seed=52)
    git(second, "add", "b.bin")
    git(second, "commit", "-q", "-m", "b")
    git(second, "push", "-q", "origin", "main")
    digests["b.bin"] = sha256_file(second / "b.bin")
    assert len(git(bare, "rev-list", STORE_REF).stdout.split()) > 1, "the store was replaced by one parentless commit"
    shutil.rmtree(second)
    _gc(bare, attacker.git_dir)
    _fresh_clone_reads(tmp_path, url, digests)


def test_a_raw_batch_is_never_retired_for_a_pack_whose_data_only_that_batch_holds(tmp_path):
    """Conformance seed 22 (hostile actor): a small file packed with the store codec has a pack data blob
    that is its one chunk. After an attacker deleted the pack ref, `push --repair` sent the chunk back
    raw, so the raw batch held the pack's data blob too; the next worker counted the pack as held by the
    remote (through that very batch), decoded it fine, and deleted the batch: the only copy went. A pack
    whose data only raw batches hold never justifies retiring a raw batch (nor dropping a local raw copy)."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)
    write_random(work / "small.bin", 3000, seed=31)          # one chunk: the store codec's data blob is the chunk
    git(work, "add", "small.bin")
    git(work, "commit", "-q", "-m", "small")
    git(work, "push", "-q", "origin", "main")
    _work_remote(work)
    digest = sha256_file(work / "small.bin")
    packs = git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/packs/").stdout.split()
    assert packs and not git(bare, "for-each-ref", "refs/panini/raw/").stdout.strip()

    attacker = _attacker(tmp_path, url).git_dir
    for ref in packs:
        git(attacker, "push", "-q", "origin", f":{ref}")
    run(["git", "panini", "push", "--repair"], cwd=work)
    assert git(bare, "for-each-ref", "refs/panini/raw/").stdout.strip(), "the repair sent nothing back"
    worker = tmp_path / "worker"
    clone(url, worker)
    _work_remote(worker)
    _work_remote(work)
    assert git(bare, "for-each-ref", "refs/panini/raw/").stdout.strip() or \
        git(bare, "for-each-ref", "refs/panini/packs/").stdout.strip(), "a worker retired the only copy"
    shutil.rmtree(work)
    _gc(bare, attacker, worker)
    _fresh_clone_reads(tmp_path, url, {"small.bin": digest})


def test_a_check_again_reads_only_what_is_new_and_forgets_what_went_away(tmp_path):
    """`fsck --remote` keeps what it learnt (the pointers of the remote's history up to its tips, the
    files it found whole there) and reads only what is new on the next check; what it kept never hides a
    loss: a raw batch ref deleted, a manifest entry dropped by a fast-forward of the store, a branch
    rewound, each after a check that found everything, is seen by the next check."""
    bare, url = make_bare(tmp_path)
    work = _honest(tmp_path, url)

    def add(name: str, seed: int):
        write_random(work / name, 64 * 1024, seed=seed)
        git(work, "add", name)
        git(work, "commit", "-q", "-m", name)
        git(work, "push", "-q", "origin", "main")

    def verdicts() -> tuple[int, dict[str, str]]:
        code, report = _fsck_remote(work)
        return code, {f["path"]: f["verdict"] for f in report["files"]}

    add("a.bin", 61)
    first = git(work, "rev-parse", "HEAD").stdout.strip()
    assert verdicts() == (0, {"a.bin": "verified"})
    add("b.bin", 62)
    assert verdicts() == (0, {"a.bin": "verified", "b.bin": "verified"})
    assert verdicts() == (0, {"a.bin": "verified", "b.bin": "verified"})   # nothing new: all from the index

    attacker = _attacker(tmp_path, url)
    for ref in git(bare, "for-each-ref", "--format=%(refname)", "refs/panini/raw/").stdout.split():
        git(attacker.git_dir, "push", "-q", "origin", f":{ref}")
    assert verdicts() == (1, {"a.bin": "missing", "b.bin": "missing"})
    run(["git", "panini", "push", "--repair"], cwd=work)
    assert verdicts() == (0, {"a.bin": "verified", "b.bin": "verified"})

    git(attacker.git_dir, "fetch", "-q", "origin", f"+{STORE_REF}:{STORE_REF}")
    dropped = pointer_of(work, "HEAD:b.bin").manifest
    _push_edit(attacker, STORE_REF, lambda e: e.remove(manifest_path(dropped)))
    code, found = verdicts()
    assert code == 1 and found == {"a.bin": "verified", "b.bin": "missing"}, found

    git(attacker.git_dir, "push", "-q", "--force", "origin", f"{first}:refs/heads/main")
    assert verdicts() == (0, {"a.bin": "verified"})   # b.bin is in no branch of the remote any more
