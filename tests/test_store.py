"""Tree edits, the store and notes chains, and their merges (deterministic unions, the notes rule)."""

import itertools
import json
import os
import random

import pytest

from conftest import git, ls_tree, make_repo, run
from git_panini.chunking import ChunkParams
from git_panini.notes import NOTES_REF, STATE_RANK, Notes
from git_panini.objects import MODE_TREE, object_id
from git_panini.repo import Repo
from git_panini.store import STORE_REF, Store, chunk_path, manifest_path
from git_panini.treeedit import TreeEditor, union_trees

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


def test_union_trees_equals_git_tree_of_the_union(repo):
    rng = random.Random(1)
    paths = [f"{rng.choice('abc')}/{rng.choice('xyz')}/{i}" for i in range(60)]
    files = {p: _blob(repo, p.encode()) for p in paths}
    a = {p: o for p, o in files.items() if rng.random() < 0.6}
    b = {p: o for p, o in files.items() if p not in a or rng.random() < 0.5}
    ta, tb = _git_tree(repo, a), _git_tree(repo, b)
    expected = _git_tree(repo, {**a, **b})
    assert union_trees(repo, ta, tb) == expected
    assert union_trees(repo, tb, ta) == expected
    assert union_trees(repo, ta, ta) == ta
    assert union_trees(repo, None, tb) == tb and union_trees(repo, ta, None) == ta


# --- the store --------------------------------------------------------------------------------------


def _pack_tree(repo, chunks: list[tuple[str, int]], tag: str) -> tuple[str, str]:
    """(pack id, pack tree) of a hand-made pack whose recipe yields `chunks`."""
    offset, listed = 0, []
    for oid, size in chunks:
        listed.append([oid, offset, size])
        offset += size
    recipe = json.dumps({"format": "git-panini-recipe/1", "size": offset, "chunks": listed,
                         "steps": [{"codec": "identity"}], "deps": [], "tag": tag}, sort_keys=True).encode()
    data = _blob(repo, b"encoded " + tag.encode())
    editor = TreeEditor(repo, None)
    editor.set("data", data)
    editor.set("recipe", _blob(repo, recipe))
    pack_id = object_id("blob", recipe, repo.algo)
    return pack_id, editor.write()


def _store_tree(repo, manifests=(), chunks=(), packs=()) -> str:
    editor = TreeEditor(repo, None)
    editor.set("config", _blob(repo, b"format git-panini-store/1\n" + ChunkParams().encode().encode()))
    for m in manifests:
        editor.set(manifest_path(m), m)
    for c in chunks:
        editor.set(chunk_path(c), c)
    for pack_id, tree in packs:
        editor.set(f"packs/{pack_id[:2]}/{pack_id}", tree, MODE_TREE)
    return editor.write()


def _paths(repo, tree, top):
    return {p.rsplit("/", 1)[1] for p in _files(repo, tree) if p.startswith(top + "/")}


def test_store_merge_is_a_deterministic_union(repo):
    chunks = [_blob(repo, b"chunk %d" % i) for i in range(8)]
    manifests = [_blob(repo, b"manifest %d" % i) for i in range(4)]
    size = len(b"chunk 0")
    p_b = _pack_tree(repo, [(chunks[3], size)], "B packs chunk 3")
    p_a5 = _pack_tree(repo, [(chunks[5], size), (chunks[6], size)], "A packs 5 and 6")
    p_b5 = _pack_tree(repo, [(chunks[5], size)], "B packs 5 differently")
    shared = _pack_tree(repo, [(chunks[7], size)], "both have this pack")
    a = _store_tree(repo, manifests[:3], [chunks[0], chunks[1], chunks[2], chunks[3]], [p_a5, shared])
    b = _store_tree(repo, manifests[1:], [chunks[1], chunks[4], chunks[5], chunks[6]], [p_b, p_b5, shared])
    store = Store(repo)
    ab, ba = store.merge_trees(a, b), store.merge_trees(b, a)
    assert ab == ba
    assert _paths(repo, ab, "manifests") == set(manifests)
    # a raw chunk leaves chunks/ when the union holds a pack that yields it (3 from B's pack, 5 and 6
    # from A's); every other chunk stays raw
    assert _paths(repo, ab, "chunks") == {chunks[0], chunks[1], chunks[2], chunks[4]}
    # conflicting pack choices for chunk 5 both stay; so does the pack both sides had
    assert {p.split("/")[2] for p in _files(repo, ab) if p.startswith("packs/")} == \
        {p_b[0], p_a5[0], p_b5[0], shared[0]}
    assert store.merge_trees(ab, a) == ab and store.merge_trees(b, ab) == ab   # idempotent
    assert store.merge_trees(a, a) == a


def test_store_merge_same_path_different_content_agrees_both_ways(repo):
    m = _blob(repo, b"manifest")
    a = TreeEditor(repo, _store_tree(repo, [m]))
    b = TreeEditor(repo, _store_tree(repo, [m]))
    a.set("config", _blob(repo, b"format git-panini-store/1\nchunker fastcdc-2020 min=1 avg=2 max=3\n"))
    ta, tb = a.write(), b.write()
    store = Store(repo)
    assert store.merge_trees(ta, tb) == store.merge_trees(tb, ta)


def test_store_record_layout_params_and_merge_from(repo):
    store = Store(repo)
    assert store.tip() is None and store.params() == ChunkParams()
    chunks = [_blob(repo, b"c%d" % i) for i in range(5)]
    m1, m2 = _blob(repo, b"m1"), _blob(repo, b"m2")
    base = store.record([m1], chunks[:2], ChunkParams())
    assert store.tip() == base
    assert store.manifests() == [m1] and sorted(store.raw_chunks()) == sorted(chunks[:2])
    assert store.params() == ChunkParams()
    assert store.has_manifest(m1) and not store.has_manifest(m2)
    assert store.record([m1], chunks[:2], ChunkParams()) == base           # nothing new: no commit
    # two writers diverge from `base`; the refs hold snapshots (parentless commits)
    ours = store.record([m2], chunks[2:4], ChunkParams())
    git(repo.work_tree, "update-ref", STORE_REF, base)
    theirs = store.record([], [chunks[4]], ChunkParams())
    git(repo.work_tree, "update-ref", STORE_REF, ours)
    merged = store.merge_from(theirs, "merge")
    assert merged not in (ours, theirs) and store.tip() == merged
    assert git(repo.work_tree, "rev-list", "--parents", "-1", merged).stdout.split() == [merged]
    assert store.tree_of(merged) == store.merge_trees(store.tree_of(ours), store.tree_of(theirs))
    assert sorted(store.raw_chunks()) == sorted(chunks) and sorted(store.manifests()) == sorted([m1, m2])
    assert store.merge_from(theirs, "again") == merged                     # already merged: unchanged
    assert store.merge_from(base, "older") == merged                       # a subset: unchanged
    git(repo.work_tree, "update-ref", "-d", STORE_REF)
    assert store.merge_from(base, "adopt") == base                         # no tip yet: adopt theirs as is
    assert store.merge_from(merged, "adopt") == merged                     # a superset: adopted, no new commit
    git(repo.work_tree, "fsck", "--strict", "--no-dangling")


# --- notes ------------------------------------------------------------------------------------------


def _note(status, updated, **extra):
    return {"status": status, "updated": updated, **extra}


def _notes_tree(repo, notes: dict[str, dict | bytes]) -> str:
    n = Notes(repo)
    editor = TreeEditor(repo, None)
    for manifest, note in notes.items():
        raw = note if isinstance(note, bytes) else json.dumps(note, sort_keys=True).encode()
        editor.set(n._path(manifest), _blob(repo, raw))
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
    assert git(repo.work_tree, "rev-list", "--count", NOTES_REF).stdout.strip() == "1"   # a snapshot
