"""Content-defined chunking: the chunker's invariants, and the store growing by the edit, not the file."""

import io
import random
import struct
import tarfile
import zipfile
import zlib

import pytest

from conftest import (MiB, dir_size, git, make_repo, run, sha256_file, store_entries, write_random)
from git_panini.format.chunking import ChunkParams, Chunker, chunk_bytes

P = ChunkParams()


# --- the chunker ------------------------------------------------------------------------------------


def _feed(data: bytes, sizes, structure=True, params=P) -> list[bytes]:
    chunker = Chunker(params, structure)
    out, pos, view = [], 0, memoryview(data)
    for n in sizes:
        if pos >= len(data):
            break
        out += chunker.feed(view[pos:pos + n])
        pos += n
    if pos < len(data):
        out += chunker.feed(view[pos:])
    return out + chunker.finish()


def _random_sizes(seed, small_first=2000):
    """Block sizes mixing tiny feeds (while the chunker sniffs the format) and big ones."""
    rng = random.Random(seed)
    sizes = [rng.randint(1, 9) for _ in range(small_first // 5)]
    sizes += [rng.choice([1, 7, 4095, 65536, 100_003, 300_000, 1 << 20]) for _ in range(400)]
    return sizes


def _zip(seed) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(12):
            zf.writestr(f"member{i}.bin", rng.randbytes(rng.randint(1000, 400_000)))
        zf.writestr("text.txt", b"words " * 50000, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _png(seed) -> bytes:
    rng = random.Random(seed)

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", 512, 512, 8, 2, 0, 0, 0))]
    for i in range(6):
        parts.append(chunk(b"tEXt", b"k\0" + rng.randbytes(rng.randint(10, 90_000))))
        parts.append(chunk(b"IDAT", rng.randbytes(rng.randint(50_000, 300_000))))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def _tar(seed) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(10):
            data = rng.randbytes(rng.randint(0, 300_000))
            info = tarfile.TarInfo(f"dir/file-{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SAMPLES = {
    "random": lambda: random.Random(11).randbytes(5 * MiB + 12345),
    "zeros": lambda: bytes(3 * MiB + 7),
    "zip": lambda: _zip(1),
    "png": lambda: _png(2),
    "tar": lambda: _tar(3),
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_same_chunks_whatever_the_feed_blocks(kind):
    data = SAMPLES[kind]()
    whole = chunk_bytes(data)
    assert b"".join(whole) == data
    for seed in range(3):
        assert _feed(data, _random_sizes(seed)) == whole, f"feed pattern {seed}"
    assert _feed(data, [len(data)]) == whole
    assert _feed(data, [P.max_size - 1] * 1000) == whole


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_chunks_concatenate_to_the_input_and_respect_max(kind):
    data = SAMPLES[kind]()
    for structure in (True, False):
        chunks = chunk_bytes(data, structure=structure)
        assert b"".join(chunks) == data
        assert all(0 < len(c) <= P.max_size for c in chunks)


def test_random_data_chunks_lie_within_min_and_max():
    data = SAMPLES["random"]()
    for structure in (True, False):
        chunks = chunk_bytes(data, structure=structure)
        assert all(P.min_size <= len(c) <= P.max_size for c in chunks[:-1])
        assert 0 < len(chunks[-1]) <= P.max_size
        average = len(data) / len(chunks)
        assert P.min_size < average < P.max_size


def test_other_parameters_are_respected():
    params = ChunkParams(4 << 10, 16 << 10, 64 << 10)
    data = random.Random(4).randbytes(2 * MiB)
    chunks = chunk_bytes(data, params, structure=False)
    assert b"".join(chunks) == data
    assert all(params.min_size <= len(c) <= params.max_size for c in chunks[:-1])
    assert _feed(data, _random_sizes(5), structure=False, params=params) == chunks
    assert ChunkParams.parse(params.encode().strip()) == params


def test_empty_and_tiny_inputs():
    assert chunk_bytes(b"") == []
    assert chunk_bytes(b"x") == [b"x"]
    assert chunk_bytes(b"PK\x03\x04") == [b"PK\x03\x04"]


def test_a_local_edit_changes_only_nearby_chunks():
    data = bytearray(random.Random(6).randbytes(8 * MiB))
    before = chunk_bytes(bytes(data))
    data[3 * MiB:3 * MiB + 4096] = random.Random(7).randbytes(4096)
    inserted = bytes(data[:5 * MiB]) + random.Random(8).randbytes(4096) + bytes(data[5 * MiB:])
    for after in (chunk_bytes(bytes(data)), chunk_bytes(inserted)):
        new = set(after) - set(before)
        assert 1 <= len(new) <= 3
        assert sum(map(len, new)) <= 3 * P.max_size


# --- the store grows by the edit ------------------------------------------------------------------------

SIZE = 64 * MiB


def _overwrite(path, rng):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(rng.randrange(size - 4096))
        f.write(rng.randbytes(4096))


def _insert(path, rng):
    data = path.read_bytes()
    at = rng.randrange(len(data))
    path.write_bytes(data[:at] + rng.randbytes(4096) + data[at:])


@pytest.mark.parametrize("edit", [_overwrite, _insert], ids=["overwrite-4KiB", "insert-4KiB"])
def test_ten_versions_of_64mib_cost_about_one(tmp_path, edit, report):
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    git(work, "config", "gc.auto", "0")                   # no gc at all during the test
    git(work, "add", ".gitattributes")
    git(work, "commit", "-q", "-m", "attrs")
    big = write_random(work / "big.bin", SIZE, seed=42)
    rng = random.Random(43)
    digests, manifests = [], set()
    for version in range(10):
        if version:
            edit(big, rng)
        git(work, "add", "big.bin")
        git(work, "commit", "-q", "-m", f"version {version}")
        digests.append(sha256_file(big))
        blob = git(work, "cat-file", "blob", "HEAD:big.bin").stdout
        manifests.add(blob.split("\n")[1].split()[1])
    assert len(set(digests)) == 10 and len(manifests) == 10

    chunk_bytes_stored = sum(store_entries(work, "chunks").values())
    manifest_bytes = sum(store_entries(work, "manifests").values())
    objects_on_disk = dir_size(work / ".git" / "objects")
    assert not (work / ".git" / "objects" / "info" / "packs").exists()   # git gc never ran
    report(f"dedup ({edit.__name__.strip('_')}): 10 versions of 64 MiB -> chunk blobs in store "
           f"{chunk_bytes_stored / MiB:.2f} MiB, manifests {manifest_bytes / MiB:.2f} MiB, "
           f".git/objects on disk {objects_on_disk / MiB:.2f} MiB")
    assert set(store_entries(work, "manifests")) == manifests
    assert SIZE <= chunk_bytes_stored <= 1.1 * SIZE
    assert objects_on_disk <= 1.1 * SIZE + 1 * MiB
    fsck = run(["git", "panini", "fsck"], cwd=work)
    assert "10 local manifests" in fsck.stdout

    # every version still comes back bit-perfect
    out = run(["git", "panini", "verify", "--all"], cwd=work).stdout
    assert "10 of 10 file(s) verified" in out
    for back, digest in ((4, digests[4]), (0, digests[0])):
        git(work, "checkout", "-q", f"HEAD~{9 - back}", "--", "big.bin")
        assert sha256_file(big) == digest
