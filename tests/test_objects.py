"""Git objects by hand: ids, trees, commits, loose writes, the pack writer, and both object readers.

Everything is checked against real git (hash-object, mktree, verify-pack, index-pack, cat-file),
for SHA-1 and SHA-256 repositories.
"""

import os
import random
from pathlib import Path

import pytest

from conftest import git, make_repo
from git_panini.git.objects import (MODE_BLOB, MODE_TREE, TreeEntry, commit_tree_and_parents, decode_tree,
                                encode_commit, encode_tree, object_id, write_loose)
from git_panini.git.pack import PackWriter
from git_panini.git.repo import CatFileReader, Pygit2Reader, Repo

FORMATS = ["sha1", "sha256"]

# blob sizes around the pack header's varint steps (4 bits, then 7 per byte) and around the 65535-byte
# stored-deflate blocks the writer builds by hand
SIZES = [0, 1, 15, 16, 17, 127, 2047, 2048, 2049, 65535, 65536, 2 * 65535, (1 << 18) - 1, 1 << 18, (5 << 20) + 3]


def _blobs(seed=0):
    rng = random.Random(seed)
    out = [rng.randbytes(n) for n in SIZES]
    out.append(b"line\n" * 5000)                    # compressible
    out.append(bytes(range(256)) * 3)               # every byte value
    return out


@pytest.fixture(params=FORMATS)
def fmt(request):
    return request.param


@pytest.fixture
def bare_repo(tmp_path, fmt) -> Path:
    return make_repo(tmp_path, fmt, install=False)


def _objects_dir(repo: Path) -> str:
    return str(repo / ".git" / "objects")


# --- ids, trees, commits ----------------------------------------------------------------------------


def test_object_id_matches_git_hash_object(bare_repo, fmt):
    for data in _blobs()[:8]:
        expected = git(bare_repo, "hash-object", "--stdin", input=data).stdout.strip()
        assert object_id("blob", data, fmt) == expected
        assert object_id("blob", memoryview(data), fmt) == expected


def test_encode_tree_matches_git_mktree(bare_repo, fmt):
    blob = git(bare_repo, "hash-object", "-w", "--stdin", input=b"x").stdout.strip()
    sub = git(bare_repo, "mktree", input=f"100644 blob {blob}\tinner\n").stdout.strip()
    # names whose order depends on git's "directories sort as if they ended in /" rule
    entries = [TreeEntry("a", MODE_TREE, sub), TreeEntry("a.b", MODE_BLOB, blob), TreeEntry("a-b", MODE_BLOB, blob),
               TreeEntry("a0", MODE_BLOB, blob), TreeEntry("b", MODE_BLOB, blob), TreeEntry("é ü=x", MODE_BLOB, blob),
               TreeEntry("ab", MODE_TREE, sub)]
    listing = "".join(f"{'040000 tree' if e.is_tree else '100644 blob'} {e.oid}\t{e.name}\n" for e in entries)
    expected = git(bare_repo, "mktree", input=listing.encode()).stdout.strip()
    data = encode_tree(reversed(entries))
    assert object_id("tree", data, fmt) == expected
    assert write_loose(_objects_dir(bare_repo), "tree", data, fmt) == expected
    git(bare_repo, "fsck", "--strict", "--no-dangling", "--connectivity-only")
    raw = git(bare_repo, "cat-file", "tree", expected, binary=True).stdout
    assert raw == data
    assert sorted(decode_tree(raw, fmt), key=lambda e: e.name) == sorted(entries, key=lambda e: e.name)


def test_decode_tree_rejects_truncation(fmt):
    data = encode_tree([TreeEntry("f", MODE_BLOB, "ab" * (20 if fmt == "sha1" else 32))])
    from git_panini.git.objects import ObjectFormatError
    for cut in (1, 5, len(data) - 1):
        with pytest.raises(ObjectFormatError):
            decode_tree(data[:cut], fmt)


def test_commit_written_by_hand_is_a_valid_git_commit(bare_repo, fmt):
    objects = _objects_dir(bare_repo)
    tree = write_loose(objects, "tree", encode_tree([]), fmt)
    first = write_loose(objects, "commit", encode_commit(tree, [], "first\n\nbody"), fmt)
    second = write_loose(objects, "commit", encode_commit(tree, [first], "second"), fmt)
    git(bare_repo, "update-ref", "refs/heads/main", second)
    git(bare_repo, "fsck", "--strict", "--no-dangling")
    assert git(bare_repo, "rev-list", "main").stdout.split() == [second, first]
    assert git(bare_repo, "log", "-1", "--format=%s", first).stdout.strip() == "first"
    data = git(bare_repo, "cat-file", "commit", second, binary=True).stdout
    assert commit_tree_and_parents(data) == (tree, [first])


def test_write_loose_is_readable_idempotent_and_read_only(bare_repo, fmt):
    objects = _objects_dir(bare_repo)
    data = random.Random(3).randbytes(100000)
    oid = write_loose(objects, "blob", data, fmt)
    path = os.path.join(objects, oid[:2], oid[2:])
    assert oid == git(bare_repo, "hash-object", "--stdin", input=data).stdout.strip()
    assert git(bare_repo, "cat-file", "blob", oid, binary=True).stdout == data
    assert not os.stat(path).st_mode & 0o222
    mtime = os.stat(path).st_mtime_ns
    assert write_loose(objects, "blob", data, fmt) == oid
    assert os.stat(path).st_mtime_ns == mtime
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith("tmp_")]


# --- pack writer ------------------------------------------------------------------------------------


def _pack_objects(repo: Path, fmt: str, writer: PackWriter) -> dict[str, tuple[str, bytes]]:
    objects = {}
    for data in _blobs():
        objects[writer.add("blob", data)] = ("blob", data)
    blob = next(iter(objects))
    tree_data = encode_tree([TreeEntry("f", MODE_BLOB, blob)])
    objects[writer.add("tree", tree_data)] = ("tree", tree_data)
    tree_oid = object_id("tree", tree_data, fmt)
    commit_data = encode_commit(tree_oid, [], "packed commit")
    objects[writer.add("commit", commit_data)] = ("commit", commit_data)
    return objects


@pytest.mark.parametrize("level", [0, 6])
def test_pack_writer_output_passes_verify_pack_and_matches_index_pack(bare_repo, fmt, level):
    writer = PackWriter(_objects_dir(bare_repo), fmt, level=level)
    objects = _pack_objects(bare_repo, fmt, writer)
    for oid in objects:
        assert oid in writer
    assert not any(git(bare_repo, "cat-file", "-e", oid, check=False).returncode == 0 for oid in objects)
    pack = writer.flush()
    assert pack and pack.endswith(".pack") and writer.packs_written == [pack]
    idx = pack[:-5] + ".idx"
    # git's own reading of the pack, object by object
    out = git(bare_repo, "verify-pack", "-v", idx).stdout
    listed = {line.split()[0]: line.split()[1] for line in out.splitlines()
              if line.split() and len(line.split()[0]) == len(next(iter(objects)))}
    assert listed == {oid: kind for oid, (kind, _) in objects.items()}
    # git index-pack, fed our .pack, must produce exactly our .idx
    theirs = str(Path(pack).parent.parent.parent / "their.idx")
    git(bare_repo, "index-pack", "-o", theirs, pack)
    assert Path(theirs).read_bytes() == Path(idx).read_bytes()
    # and the objects read back through git, byte for byte
    for oid, (kind, data) in objects.items():
        assert git(bare_repo, "cat-file", kind, oid, binary=True).stdout == data
    git(bare_repo, "fsck", "--strict", "--no-dangling")
    assert not [n for n in os.listdir(Path(pack).parent) if n.startswith("tmp_")]


def test_pack_writer_batches_deduplicates_and_flushes_empty(bare_repo, fmt):
    writer = PackWriter(_objects_dir(bare_repo), fmt, batch_bytes=300 << 10)
    assert writer.flush() is None
    rng = random.Random(9)
    blobs = [rng.randbytes(100 << 10) for _ in range(10)]
    oids = [writer.add("blob", b) for b in blobs]
    assert writer.add("blob", blobs[-1]) == oids[-1]        # a duplicate within a batch is stored once
    writer.flush()
    assert len(writer.packs_written) >= 3                   # the batch limit cut several packs
    total = 0
    for pack in writer.packs_written:
        out = git(bare_repo, "verify-pack", "-v", pack[:-5] + ".idx").stdout
        total += sum(1 for line in out.splitlines() if line.split()[1:2] == ["blob"])
    assert total == 10
    for oid, data in zip(oids, blobs):
        assert git(bare_repo, "cat-file", "blob", oid, binary=True).stdout == data


# --- object readers ---------------------------------------------------------------------------------

READERS = [("pygit2", "sha1"), ("cat-file", "sha1"), ("cat-file", "sha256")]


@pytest.fixture(params=READERS, ids=lambda p: f"{p[0]}-{p[1]}")
def populated(request, tmp_path):
    """A repository with a commit (tree, blobs: loose, packed, empty, big), and an opened reader."""
    kind, fmt = request.param
    repo = make_repo(tmp_path, fmt, install=False)
    rng = random.Random(5)
    files = {"small.txt": b"hello\n", "empty": b"", "binary.bin": rng.randbytes(3000) + b"\n\n\0",
             "big.bin": rng.randbytes(3 << 20)}
    for name, data in files.items():
        (repo / name).write_bytes(data)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "objects")
    git(repo, "gc", "-q")                                 # everything so far is packed
    loose = rng.randbytes(70000)
    loose_oid = write_loose(_objects_dir(repo), "blob", loose, fmt)
    cls = Pygit2Reader if kind == "pygit2" else CatFileReader
    reader = cls(str(repo / ".git"))
    yield repo, fmt, reader, files, (loose_oid, loose)
    reader.close()


def test_reader_reads_blobs_packed_and_loose(populated):
    repo, fmt, reader, files, (loose_oid, loose) = populated
    for name, data in files.items():
        oid = git(repo, "rev-parse", f"HEAD:{name}").stdout.strip()
        assert reader.read(oid) == ("blob", data)
        assert reader.exists(oid)
    assert reader.read(loose_oid) == ("blob", loose)


def test_reader_reads_trees_and_commits(populated):
    repo, fmt, reader, files, _ = populated
    commit = git(repo, "rev-parse", "HEAD").stdout.strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").stdout.strip()
    kind, data = reader.read(commit)
    assert kind == "commit"
    assert data == git(repo, "cat-file", "commit", commit, binary=True).stdout
    assert commit_tree_and_parents(data) == (tree, [])
    kind, data = reader.read(tree)
    assert kind == "tree"
    assert {e.name for e in decode_tree(data, fmt)} == set(files)


def test_reader_missing_is_none_and_not_exists(populated):
    repo, fmt, reader, files, _ = populated
    hex_len = 40 if fmt == "sha1" else 64
    for missing in ("0" * hex_len, "f" * hex_len, object_id("blob", b"never written", fmt)):
        assert reader.read(missing) is None
        assert reader.exists(missing) is False
    # the reader is still in a usable state after misses
    oid = git(repo, "rev-parse", "HEAD:small.txt").stdout.strip()
    assert reader.read(oid) == ("blob", b"hello\n")


def test_reader_sees_objects_written_after_it_opened(populated):
    repo, fmt, reader, files, _ = populated
    data = b"late object\n" * 100
    oid = object_id("blob", data, fmt)
    assert reader.read(oid) is None
    writer = PackWriter(_objects_dir(repo), fmt)
    writer.add("blob", data)
    writer.flush()
    assert reader.exists(oid)
    assert reader.read(oid) == ("blob", data)
    late_loose = b"late loose\n"
    loose_oid = write_loose(_objects_dir(repo), "blob", late_loose, fmt)
    assert reader.read(loose_oid) == ("blob", late_loose)


def test_repo_picks_a_reader_that_works_for_its_format(populated):
    repo, fmt, _, files, _ = populated
    r = Repo(str(repo))
    try:
        assert r.algo == fmt and r.hex_len == (40 if fmt == "sha1" else 64)
        oid = git(repo, "rev-parse", "HEAD:big.bin").stdout.strip()
        assert r.read_kind(oid, "blob") == files["big.bin"]
        assert r.read_kind(oid, "tree") is None
        assert r.exists(oid)
    finally:
        r.close()


# --- reads in bulk, and the switch from git cat-file to libgit2 ----------------------------------------


def test_read_many_reads_what_is_here_of_the_kind_within_the_limit_in_order(populated):
    repo_path, fmt, _, files, (loose_oid, loose) = populated
    repo = Repo(str(repo_path))
    oid = {name: git(repo_path, "rev-parse", f"HEAD:{name}").stdout.strip() for name in files}
    tree = git(repo_path, "rev-parse", "HEAD^{tree}").stdout.strip()
    hex_len = 40 if fmt == "sha1" else 64
    asked = [oid["binary.bin"], "0" * hex_len, "not an id\nHEAD", tree, oid["big.bin"], loose_oid, oid["small.txt"],
             oid["empty"]]
    got = list(repo.read_many(asked, "blob", 100_000))
    # absent, not an id, a tree, and a blob over the limit are skipped; the rest come in the order asked
    assert got == [(oid["binary.bin"], files["binary.bin"]), (loose_oid, loose), (oid["small.txt"], b"hello\n"),
                   (oid["empty"], b"")]
    assert list(repo.read_many([tree], "tree", 100_000))[0][0] == tree
    assert list(repo.read_many([], "blob", 10)) == []
    repo.close()


def test_a_repo_reads_through_cat_file_then_libgit2_and_both_give_the_same_bytes(tmp_path, monkeypatch):
    from git_panini.git import repo as repo_mod
    path = make_repo(tmp_path, install=False)
    blobs = [f"blob {i}\n".encode() for i in range(8)]
    oids = Repo(str(path)).write_blobs(blobs)
    monkeypatch.setattr(repo_mod, "LIGHT_READS", 3)
    repo = Repo(str(path))
    kinds = []
    for oid, data in zip(oids, blobs):
        assert repo.read_kind(oid, "blob") == data
        kinds.append(type(repo._reader).__name__)
    assert kinds[:2] == ["CatFileReader"] * 2 and kinds[-1] == "Pygit2Reader"
    retired = repo._retired[0]
    assert retired.read(oids[0]) == ("blob", blobs[0])   # still usable by a thread that held it
    repo.close()
    assert retired._proc.poll() is not None
