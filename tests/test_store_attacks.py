"""The store against hostile remotes, sibling processes and several remotes: nobody can make a clone drop,
leak or lose data. Real repositories and file:// remotes; each attack ends with reflog expiry, `git gc
--prune=now` and a read-back from a fresh clone."""

from __future__ import annotations

import json

from conftest import (MiB, clone, git, make_bare, make_repo, manifest_chunks, pointer_of, run, sha256_file,
                      write_random)
from git_panini.git.objects import encode_commit
from git_panini.transfer.publish import prepare
from git_panini.git.repo import Repo
from git_panini.store.shared import STORE_REF, Store, manifest_path, pack_path
from git_panini.transfer.sync import fetch, push_once
from git_panini.git.tree_edit import TreeEditor


def _gc(path):
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")


def _scan(bare, data: bytes) -> int:
    """How many objects of the bare repository contain any 256-byte window of `data`."""
    windows = [data[i:i + 256] for i in range(0, len(data) - 256, max(1, len(data) // 8))]
    out = git(bare, "cat-file", "--batch-all-objects", "--batch", binary=True).stdout
    return sum(w in out for w in windows)


def _fresh_clone_reads(tmp_path, url, name, files: dict[str, str]):
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    dest = tmp_path / name
    clone(url, dest)
    for path, digest in files.items():
        assert sha256_file(dest / path) == digest, path


def _setup(tmp_path, name="a"):
    bare, url = make_bare(tmp_path, name=f"{name}-remote.git")
    work = make_repo(tmp_path, name=name, track=("*.bin",))
    git(work, "remote", "add", "origin", url)
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "attributes")
    return bare, url, work


def _hostile_store_commit(bare, edit) -> str:
    """A new tip for the bare's store, descending from its current one (a fast-forward any writer
    may push), with edit(editor) applied to the tree: as pushed by a hostile clone."""
    r = Repo(str(bare))
    try:
        store = Store(r)
        tip = store.tip()
        editor = TreeEditor(r, store.tree_of(tip))
        edit(r, editor)
        commit = r.write_object("commit", encode_commit(editor.write(), [tip] if tip else [], "hostile"))
        r.git("update-ref", STORE_REF, commit)
        return commit
    finally:
        r.close()


def test_hostile_store_entries_never_make_a_clone_drop_its_data(tmp_path):
    """The three snapshots of the issue (a gitlink over a chunk, a path naming another blob, a pack that
    only claims to yield a chunk) and a chunker config that would break every add, pushed to the
    remote by a hostile writer: the victim fetches, works, pushes and gc's, and loses nothing."""
    bare, url, work = _setup(tmp_path)
    data = write_random(work / "f.bin", 2 * MiB, seed=1)
    digest = sha256_file(data)
    git(work, "add", "f.bin")
    git(work, "commit", "-q", "-m", "f")
    git(work, "push", "-q", "-u", "origin", "main")
    manifest = pointer_of(work, "HEAD:f.bin").manifest
    chunks = [c for c, _ in manifest_chunks(work, manifest)]

    def poison(r, editor):
        other = r.write_object("blob", b"some other blob")
        editor.set(manifest_path(manifest), other)                                   # our path, another blob
        editor.set(manifest_path(chunks[0]), chunks[0], mode="160000")              # a gitlink
        recipe = {"format": "git-panini-recipe/1", "size": 1, "steps": [], "deps": [], "data": other,
                  "encoded_size": 1, "chunks": [[c, 0, 1] for c in chunks]}
        lying = r.write_object("blob", json.dumps(recipe).encode())
        editor.set(pack_path(lying), lying)                                          # claims every chunk
        editor.set("config", r.write_object("blob", b"format git-panini-store/2\nchunker fastcdc-2020 "
                                                    b"min=33554432 avg=50331648 max=67108864\n"))
    _hostile_store_commit(bare, poison)

    run(["git", "panini", "fetch"], cwd=work)
    run(["git", "panini", "work", "--effort", "0"], cwd=work)
    data.unlink()
    _gc(work)
    git(work, "checkout", "--", "f.bin")
    assert sha256_file(work / "f.bin") == digest
    # The victim can still add files: the hostile config was never adopted (ours was there first).
    write_random(work / "g.bin", MiB, seed=2)
    git(work, "add", "g.bin")
    git(work, "commit", "-q", "-m", "g")
    git(work, "push", "-q")
    _gc(bare)
    _fresh_clone_reads(tmp_path, url, "fresh", {"f.bin": digest, "g.bin": sha256_file(work / "g.bin")})


def test_a_pack_that_claims_a_files_chunks_does_not_stop_adding_it(tmp_path):
    """Dedup poisoning: the remote's store lists a pack claiming the chunk ids of a predictable file.
    A clone that later adds that file still stores every chunk (it dedups only against blobs it has)."""
    bare, url, work = _setup(tmp_path)
    predictable = write_random(tmp_path / "predictable.bin", MiB, seed=7)
    chunk_ids = _chunk_ids_of(tmp_path, predictable)

    def claim(r, editor):
        data = r.write_object("blob", b"nothing real")
        recipe = {"format": "git-panini-recipe/1", "size": 64, "steps": [], "deps": [], "data": data,
                  "encoded_size": 12, "chunks": [[c, 0, 64] for c in chunk_ids]}
        lying = r.write_object("blob", json.dumps(recipe).encode())
        editor.set(pack_path(lying), lying)
    git(work, "push", "-q", "-u", "origin", "main")
    _hostile_store_commit(bare, claim)
    run(["git", "panini", "fetch"], cwd=work)
    (work / "p.bin").write_bytes(predictable.read_bytes())
    git(work, "add", "p.bin")
    git(work, "commit", "-q", "-m", "p")
    _gc(work)
    for c in chunk_ids:
        assert git(work, "cat-file", "-e", c, check=False).returncode == 0, "a chunk was deduplicated away"
    git(work, "push", "-q")
    _gc(bare)
    _fresh_clone_reads(tmp_path, url, "fresh", {"p.bin": sha256_file(predictable)})


def _chunk_ids_of(tmp_path, path) -> list[str]:
    scratch = make_repo(tmp_path, name="scratch", track=("*.bin",))
    (scratch / "x.bin").write_bytes(path.read_bytes())
    git(scratch, "add", "x.bin")
    blob = git(scratch, "ls-files", "-s", "x.bin").stdout.split()[1]
    manifest = git(scratch, "cat-file", "blob", blob).stdout.split("\n")[1].split()[1]
    return [c for c, _ in manifest_chunks(scratch, manifest)]


def test_a_sibling_process_fetch_never_turns_a_push_into_a_lost_update(tmp_path):
    """The push carries commits built on the remote tips this process fetched: when another writer
    moved the remote meanwhile (and a sibling process of the same repository fetched that in), the
    push is refused, never merged over; the retry keeps everyone's files."""
    bare, url, a = _setup(tmp_path, "a")
    git(a, "push", "-q", "-u", "origin", "main")
    b = tmp_path / "b"
    clone(url, b)
    run(["git", "panini", "install"], cwd=b)
    files = {}
    for repo, name, seed in ((a, "a1.bin", 1), (b, "b1.bin", 2)):
        git(repo, "pull", "-q", "--no-rebase")
        files[name] = sha256_file(write_random(repo / name, 300_000, seed=seed))
        git(repo, "add", name)
        git(repo, "commit", "-q", "-m", name)
        git(repo, "push", "-q")
    git(a, "pull", "-q", "--no-rebase")
    files["a2.bin"] = sha256_file(write_random(a / "a2.bin", 300_000, seed=3))
    git(a, "add", "a2.bin")
    git(a, "commit", "-q", "-m", "a2")
    repo = Repo(str(a))
    try:
        state = fetch(repo, "origin")                      # this process's view of the remote
        git(b, "pull", "-q", "--no-rebase")
        files["b2.bin"] = sha256_file(write_random(b / "b2.bin", 300_000, seed=4))
        git(b, "add", "b2.bin")
        git(b, "commit", "-q", "-m", "b2")
        git(b, "push", "-q")                               # another writer moves the remote
        run(["git", "panini", "fetch"], cwd=a)             # a sibling process of `a` fetches it in
        out = prepare(repo, state, ["HEAD", "--not", "--remotes=origin"])
        assert push_once(repo, state, out) is None          # refused: the remote is not where we merged
        run(["git", "panini", "push"], cwd=a)               # fetch, merge, retry
    finally:
        repo.close()
    git(a, "pull", "-q", "--no-rebase")
    git(a, "push", "-q")
    _gc(bare)
    _fresh_clone_reads(tmp_path, url, "fresh", files)


def test_a_push_to_one_remote_carries_nothing_published_to_another(tmp_path):
    """A branch pushed to `internal` (and files a remote-less worker took from local branches) never
    reach `public`, whose pushes carry only what the commits pushed to it reference."""
    public, public_url = make_bare(tmp_path, name="public.git")
    internal, internal_url = make_bare(tmp_path, name="internal.git")
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    git(work, "remote", "add", "public", public_url)
    git(work, "remote", "add", "internal", internal_url)
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "attributes")
    git(work, "push", "-q", "public", "main")
    git(work, "checkout", "-q", "-b", "secret")
    secret = write_random(work / "s.bin", 300_000, seed=11).read_bytes()
    git(work, "add", "s.bin")
    git(work, "commit", "-q", "-m", "secret")
    git(work, "push", "-q", "internal", "secret")
    git(work, "checkout", "-q", "-b", "private", "main")
    private = write_random(work / "p.bin", 300_000, seed=12).read_bytes()
    git(work, "add", "p.bin")
    git(work, "commit", "-q", "-m", "private")
    git(work, "checkout", "-q", "main")
    run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=work)   # packs every committed file
    public_file = write_random(work / "pub.bin", 300_000, seed=13)
    git(work, "add", "pub.bin")
    git(work, "commit", "-q", "-m", "public")
    git(work, "push", "-q", "public", "main")
    run(["git", "panini", "work", "--remote", "internal", "--effort", "0"], cwd=work)
    git(work, "push", "-q", "public", "main")
    assert _scan(public, secret) == 0 and _scan(public, private) == 0
    assert _scan(internal, secret) > 0 and _scan(internal, private) == 0
    _gc(public)
    _fresh_clone_reads(tmp_path, public_url, "fresh", {"pub.bin": sha256_file(public_file)})


def test_a_worker_deletes_raw_batches_only_for_packs_their_remote_holds(tmp_path):
    """A clone of a mirror reads a file through the mirror's pack; working for origin it must not count
    that pack (origin does not hold it) when it removes origin's raw batches."""
    origin, origin_url = make_bare(tmp_path, name="origin.git")
    mirror, mirror_url = make_bare(tmp_path, name="mirror.git")
    a = make_repo(tmp_path, name="a", track=("*.bin",))
    git(a, "remote", "add", "origin", origin_url)
    git(a, "remote", "add", "mirror", mirror_url)
    git(a, "add", ".gitattributes")
    digest = sha256_file(write_random(a / "f.bin", 400_000, seed=21))
    git(a, "add", "f.bin")
    git(a, "commit", "-q", "-m", "f")
    git(a, "push", "-q", "origin", "main")
    git(a, "push", "-q", "mirror", "main")
    m = tmp_path / "m"
    clone(mirror_url, m)
    run(["git", "panini", "install"], cwd=m)
    run(["git", "panini", "work", "--effort", "0"], cwd=m)          # the mirror: packed, raw batch gone
    files = {"f.bin": digest, "g.bin": sha256_file(write_random(a / "g.bin", 200_000, seed=22))}
    git(a, "add", "g.bin")
    git(a, "commit", "-q", "-m", "g")
    git(a, "push", "-q", "origin", "main")                          # origin: f and g pending
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    b = tmp_path / "b"
    clone(mirror_url, b)                                             # reads f.bin through the mirror's pack
    git(b, "remote", "add", "o", origin_url)
    run(["git", "panini", "work", "--remote", "o", "--effort", "0"], cwd=b)
    _gc(origin)
    _fresh_clone_reads(tmp_path, origin_url, "fresh", files)
