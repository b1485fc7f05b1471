"""Tree edits, the store and notes chains, and their merges (validated unions that never drop ours, the notes rule)."""

import itertools
import json
import os
import random

import pytest

from conftest import git, ls_tree, make_repo, run
from git_panini.format.chunking import ChunkParams
from git_panini.store.notes import NOTES_REF, STATE_RANK, Notes
from git_panini.git.objects import MODE_TREE, object_id
from git_panini.git.repo import Repo
from git_panini.store.shared import STORE_REF, Store, config_blob, manifest_path, pack_path, raw_list_path
from git_panini.git.tree_edit import TreeEditor

STATES = ["pending", "queued", "processing", "failed", "completed"]   # lowest to highest


@pytest.fixture(params=["sha1", "sha256"])
def repo(request, tmp_path):
    path = make_repo(tmp_path, request.param, install=False)
    r = Repo(str(path))
    yield r
    r.close()


def _blob(repo, data: bytes) -> str:
    return repo.write_object("blob", data)


def _git_tree(repo, files: dict[str, str]) -> str:
    """The tree git itself builds for {path: blob oid} (through a scratch index and write-tree)."""
    index = os.path.join(repo.git_dir, "scratch-index")
    if os.path.exists(index):
        os.remove(index)
    env = {"GIT_INDEX_FILE": index}
    listing = "".join(f"100644 {oid}\t{path}\n" for path, oid in files.items())
    run(["git", "update-index", "--add", "--index-info"], cwd=repo.work_tree, input=listing, env=env)
    return run(["git", "write-tree"], cwd=repo.work_tree, env=env).stdout.strip()


def _files(repo, tree: str | None) -> dict[str, str]:
    return {p: oid for p, (_, oid, _) in ls_tree(repo.work_tree, tree).items()} if tree else {}


# --- treeedit ---------------------------------------------------------------------------------------

PATHS = ["a", "a.b", "a-b", "a0", "dir/x", "dir/sub/y", "dir/sub/z", "dir.txt", "dir-x/q", "deep/1/2/3/4",
         "sp ace/é=ü", "z"]


def test_tree_editor_set_write_matches_git_write_tree(repo):
    files = {p: _blob(repo, p.encode()) for p in PATHS}
    editor = TreeEditor(repo, None)
    for path in reversed(PATHS):
        editor.set(path, files[path])
    tree = editor.write()
    assert tree == _git_tree(repo, files)
    assert _files(repo, tree) == files
    git(repo.work_tree, "fsck", "--strict", "--no-dangling")


def test_tree_editor_get_list_remove(repo):
    files = {p: _blob(repo, p.encode()) for p in PATHS}
    editor = TreeEditor(repo, _git_tree(repo, files))
    assert editor.get("dir/sub/y").oid == files["dir/sub/y"]
    assert editor.get("dir/sub/nope") is None and editor.get("nope/x") is None
    assert [e.name for e in editor.list("dir")] == ["sub", "x"]
    assert editor.list("dir")[0].mode == MODE_TREE
    assert editor.list("missing") == []
    # removing every file of a directory removes the directory; removing what is absent is a no-op
    for path in ("dir/sub/y", "dir/sub/z", "deep/1/2/3/4", "a", "not/there", "dir/sub"):
        editor.remove(path)
    tree = editor.write()
    kept = {p: o for p, o in files.items() if p not in ("dir/sub/y", "dir/sub/z", "deep/1/2/3/4", "a")}
    assert tree == _git_tree(repo, kept)
    assert "deep" not in {e.name for e in repo.read_tree(tree)}
    # replace a blob, add beside an existing subtree: still exactly git's tree
    editor = TreeEditor(repo, tree)
    new = _blob(repo, b"changed")
    editor.set("dir/x", new)
    editor.set("dir/new/file", new)
    kept.update({"dir/x": new, "dir/new/file": new})
    assert editor.write() == _git_tree(repo, kept)


def test_tree_editor_unchanged_set_rewrites_nothing(repo):
    files = {p: _blob(repo, p.encode()) for p in PATHS}
    tree = _git_tree(repo, files)
    before = set(_loose(repo))
    editor = TreeEditor(repo, tree)
    for path, oid in files.items():
        editor.set(path, oid)
    assert editor.write() == tree
    assert set(_loose(repo)) - before <= {tree}        # at most the (already existing) root is rewritten


def _loose(repo):
    for d in os.listdir(repo.objects_dir):
        if len(d) == 2:
            for f in os.listdir(os.path.join(repo.objects_dir, d)):
                yield d + f


# --- the store --------------------------------------------------------------------------------------


def _store_tree(repo, manifests=(), packs=(), raw=(), config: bytes | None = None) -> str:
    editor = TreeEditor(repo, None)
    editor.set("config", _blob(repo, config or config_blob(ChunkParams())))
    for m in manifests:
        editor.set(manifest_path(m), m)
    for p in packs:
        editor.set(pack_path(p), p)
    for batch, listing in raw:
        editor.set(raw_list_path(batch), listing)
    return editor.write()


def _paths(repo, tree, top):
    return {p.rsplit("/", 1)[1] for p in _files(repo, tree) if p.startswith(top + "/")}


def test_store_merge_is_a_union_of_valid_entries(repo):
    manifests = [_blob(repo, b"manifest %d" % i) for i in range(4)]
    packs = [_blob(repo, b"recipe %d" % i) for i in range(3)]
    a = _store_tree(repo, manifests[:3], packs[:2], [("a" * repo.hex_len, _blob(repo, b"list a"))])
    b = _store_tree(repo, manifests[1:], packs[1:], [("b" * repo.hex_len, _blob(repo, b"list b"))])
    store = Store(repo)
    ab, ba = store.merge_trees(a, b), store.merge_trees(b, a)
    assert ab == ba
    assert _paths(repo, ab, "manifests") == set(manifests) and _paths(repo, ab, "packs") == set(packs)
    assert _paths(repo, ab, "raw") == {"a" * repo.hex_len, "b" * repo.hex_len}
    assert store.merge_trees(ab, a) == ab and store.merge_trees(b, ab) == ab   # idempotent
    assert store.merge_trees(a, a) == a


def test_store_merge_never_takes_a_hostile_entry_nor_drops_ours(repo):
    """Their tree can only add entries that are what their path says: a gitlink or a tree where a
    blob belongs, a path naming another blob, a replaced config: none is taken, none drops ours."""
    m = _blob(repo, b"our manifest")
    other = _blob(repo, b"some other blob")
    ours = _store_tree(repo, [m])
    store = Store(repo)
    hostile = TreeEditor(repo, _store_tree(repo, config=b"format git-panini-store/2\nchunker fastcdc-2020 min=1 avg=2 max=3\n"))
    hostile.set(manifest_path(m), other)                                   # our path, another blob
    hostile.set(manifest_path(other[:2] + "0" * (repo.hex_len - 2)), other)   # name != content id
    hostile.set("manifests/zz/" + "f" * repo.hex_len, other)               # not a fan directory
    hostile.set(manifest_path(other), other, mode="160000")                # a gitlink
    hostile.set(pack_path(other), _store_tree(repo), mode=MODE_TREE)       # a tree as a recipe
    hostile.set("chunks/" + other[:2] + "/" + other, other)                # an unknown top-level directory
    theirs = hostile.write()
    merged = store.merge_trees(ours, theirs)
    files = _files(repo, merged)
    assert files[manifest_path(m)] == m
    assert set(files) == {"config", manifest_path(m)}
    assert Store(repo).merge_trees(None, theirs) is not None
    # a store that had no config adopts a valid one, never an invalid one
    bare = TreeEditor(repo, None)
    bare.set(manifest_path(m), m)
    assert "config" not in _files(repo, store.merge_trees(bare.write(), _store_tree(repo, config=b"format nonsense\n")))


def test_store_publish_chain_params_and_merge_from(repo):
    store = Store(repo)
    assert store.tip() is None and store.params() == ChunkParams()
    m1, m2, m3 = _blob(repo, b"m1"), _blob(repo, b"m2"), _blob(repo, b"m3")
    base = store.publish([m1], ChunkParams(), "one")
    assert store.tip() == base and store.manifests() == [m1] and store.params() == ChunkParams()
    assert store.has_manifest(m1) and not store.has_manifest(m2)
    assert store.publish([m1], ChunkParams(), "again") == base          # nothing new: no commit
    # two writers diverge from `base`; every update is a child of the tip it replaced
    ours = store.publish([m2], ChunkParams(), "ours")
    assert git(repo.work_tree, "rev-list", "--parents", "-1", ours).stdout.split() == [ours, base]
    git(repo.work_tree, "update-ref", STORE_REF, base)
    theirs = store.publish([m3], ChunkParams(), "theirs")
    git(repo.work_tree, "update-ref", STORE_REF, ours)
    merged = store.merge_from(theirs, "merge")
    assert store.tip() == merged
    assert git(repo.work_tree, "rev-list", "--parents", "-1", merged).stdout.split() == [merged, ours, theirs]
    assert sorted(store.manifests()) == sorted([m1, m2, m3])
    assert store.merge_from(theirs, "again") == merged                     # already merged: unchanged
    assert store.merge_from(base, "older") == merged                       # an ancestor: unchanged
    git(repo.work_tree, "update-ref", "-d", STORE_REF)
    assert store.merge_from(base, "adopt") == base                         # no tip yet: adopt theirs as is
    assert store.merge_from(merged, "adopt") == merged                     # a descendant: fast-forward
    git(repo.work_tree, "fsck", "--strict", "--no-dangling")


# --- notes ------------------------------------------------------------------------------------------


def _note(status, updated, **extra):
    return {"status": status, "updated": updated, **extra}


def _notes_tree(repo, notes: dict[str, dict | bytes]) -> str:
    n = Notes(repo)
    editor = TreeEditor(repo, None)
    for manifest, note in notes.items():
        raw = note if isinstance(note, bytes) else json.dumps(note, sort_keys=True).encode()
        editor.set(n.path(manifest), _blob(repo, raw))
    return editor.write()


def _read_notes(repo, tree) -> dict[str, dict]:
    out = {}
    for path, oid in _files(repo, tree).items():
        out[path.replace("/", "")] = json.loads(repo.read_kind(oid, "blob"))
    return out


def test_notes_rank_order_is_the_documented_one():
    assert sorted(STATE_RANK, key=STATE_RANK.get) == STATES


@pytest.mark.parametrize("low,high", list(itertools.combinations(STATES, 2)))
def test_notes_merge_higher_state_wins_even_when_older(repo, low, high):
    m = "ab" * (repo.hex_len // 2)
    a = _notes_tree(repo, {m: _note(high, "2020-01-01T00:00:00.000000Z")})
    b = _notes_tree(repo, {m: _note(low, "2026-12-31T00:00:00.000000Z")})
    notes = Notes(repo)
    ab, ba = notes.merge_trees(a, b), notes.merge_trees(b, a)
    assert ab == ba
    assert _read_notes(repo, ab)[m]["status"] == high


@pytest.mark.parametrize("state", STATES)
def test_notes_merge_ties_go_to_the_later_update(repo, state):
    m = "cd" * (repo.hex_len // 2)
    old = _note(state, "2026-01-01T10:00:00.000000Z", worker="old")
    new = _note(state, "2026-01-01T10:00:00.000001Z", worker="new")
    a, b = _notes_tree(repo, {m: old}), _notes_tree(repo, {m: new})
    notes = Notes(repo)
    ab, ba = notes.merge_trees(a, b), notes.merge_trees(b, a)
    assert ab == ba
    assert _read_notes(repo, ab)[m]["worker"] == "new"


def test_notes_merge_many_is_deterministic_and_keeps_one_sided(repo):
    rng = random.Random(7)
    manifests = [object_id("blob", b"m%d" % i, repo.algo) for i in range(40)]
    a, b = {}, {}
    for m in manifests:
        for side in (a, b):
            if rng.random() < 0.7:
                side[m] = _note(rng.choice(STATES), f"2026-01-{rng.randint(10, 28)}T00:00:00.000000Z",
                                worker=rng.choice("xyz"))
    a[manifests[0]] = b"this is not json"              # a broken note loses against any valid one
    b[manifests[0]] = _note("pending", "2026-01-01T00:00:00.000000Z")
    ta, tb = _notes_tree(repo, a), _notes_tree(repo, b)
    notes = Notes(repo)
    merged = notes.merge_trees(ta, tb)
    assert merged == notes.merge_trees(tb, ta)
    got = _read_notes(repo, merged)
    assert set(got) == set(a) | set(b)
    for m in got:
        cands = [s[m] for s in (a, b) if m in s and isinstance(s[m], dict)]
        best = max(cands, key=lambda n: (STATE_RANK[n["status"]], n["updated"]))
        assert (got[m]["status"], got[m]["updated"]) == (best["status"], best["updated"])


def test_notes_put_get_all_and_git_notes_can_read_them(repo):
    notes = Notes(repo)
    m1, m2 = _blob(repo, b"manifest one"), _blob(repo, b"manifest two")
    notes.put({m1: _note("pending", "2026-01-01T00:00:00Z")}, "first")
    tip = notes.put({m1: _note("completed", "2026-01-02T00:00:00Z"), m2: _note("pending", "2026-01-02T00:00:00Z")},
                    "second", only_if_absent=True)
    assert notes.get(m1)["status"] == "pending"              # only_if_absent did not overwrite
    assert notes.get(m2)["status"] == "pending"
    assert set(notes.all()) == {m1, m2}
    assert notes.tip() == tip
    shown = git(repo.work_tree, "notes", "--ref=panini", "show", m1).stdout
    assert json.loads(shown)["status"] == "pending"
    notes.put({m1: _note("failed", "2026-01-03T00:00:00Z", error="boom")}, "third")
    assert notes.get(m1)["error"] == "boom"
    assert git(repo.work_tree, "rev-list", "--count", NOTES_REF).stdout.strip() == "3"   # a chain: one commit per update


def test_notes_merge_quarantines_notes_no_writer_could_have_made(repo):
    """Malformed notes from a remote (deep nesting, wrong types, unknown status, huge) are never merged
    in, and readers skip them instead of crashing."""
    ids = [object_id("blob", b"n%d" % i, repo.algo) for i in range(7)]
    good = _note("completed", "2026-01-01T00:00:00.000000Z", stored_bytes=10)
    hostile = {ids[1]: b"[" * 100_000 + b"]" * 100_000,
               ids[2]: json.dumps(_note("completed", "2027-01-01T00:00:00.000000Z", stored_bytes="10")).encode(),
               ids[3]: json.dumps({"status": "done", "updated": "2027"}).encode(),
               ids[4]: b"[1, 2, 3]",
               ids[5]: json.dumps(_note("pending", "2027-01-01T00:00:00.000000Z", error="x" * (100 << 10))).encode(),
               ids[0]: json.dumps(_note("completed", "2027-01-01T00:00:00.000000Z", attempts=True)).encode()}
    ours = _notes_tree(repo, {ids[0]: good, ids[6]: good})
    notes = Notes(repo)
    merged = notes.merge_trees(ours, _notes_tree(repo, hostile))
    assert merged == ours                                   # nothing of theirs taken, ours untouched
    git(repo.work_tree, "update-ref", NOTES_REF, repo.write_object("commit", b"tree " + _notes_tree(repo, {**hostile, ids[6]: good}).encode() + b"\n\nx\n"))
    assert set(notes.all()) == {ids[6]}                      # readers skip what does not parse


def test_a_damaged_chunk_index_is_started_over_with_its_write_ahead_log(tmp_path):
    """The index is derived data: a file that is no database is replaced (its -wal and -shm go with it) and
    rebuilt from the store, and every command goes on."""
    from git_panini.store.chunk_index import ChunkIndex
    repo_path = make_repo(tmp_path, track=("*.bin",))
    (repo_path / "a.bin").write_bytes(os.urandom(200_000))
    git(repo_path, "add", ".gitattributes", "a.bin")
    git(repo_path, "commit", "-q", "-m", "a")
    panini = repo_path / ".git" / "panini"
    for name, junk in (("index.sqlite", b"not a database at all" * 100), ("index.sqlite-wal", b"junk"),
                       ("index.sqlite-shm", b"junk")):
        (panini / name).write_bytes(junk)
    index = ChunkIndex(Store(Repo(str(repo_path))))
    index.refresh()
    assert index.db.execute("pragma integrity_check").fetchone() == ("ok",)
    assert index.db.execute("pragma journal_mode").fetchone() == ("wal",)
    index.close()
    run(["git", "panini", "fsck"], cwd=repo_path)
    run(["git", "panini", "verify"], cwd=repo_path)
