"""Bad input gets a clear error and a non-zero exit, never wrong bytes; odd but valid input round-trips."""

import json
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import (MiB, clone, git, make_bare, make_repo, manifest_chunks, pointer_of, run, sha256_file,
                      write_random)
from git_panini.format.pointer import Pointer


def _commit_raw(repo: Path, path: str, data: bytes, message: str = "raw blob"):
    """Commit `data` at `path` as is, bypassing the clean filter."""
    oid = git(repo, "hash-object", "-w", "--stdin", input=data).stdout.strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{oid},{path}")
    git(repo, "commit", "-q", "-m", message)
    return oid


def _recheckout(repo: Path, path: str, check=True):
    (repo / path).unlink(missing_ok=True)
    return git(repo, "checkout", "--", path, check=check)


def _publish_and_clone(tmp_path, work: Path, name="clone") -> Path:
    _, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    dest = tmp_path / name
    clone(url, dest)
    return dest


# --- malformed pointers -----------------------------------------------------------------------------

M = "4f44632cf5afe0baa3013a19a32d3b93d8511b70"
SHA = "17526a1e3b511a4d187e548570cdd5f1a44c31e9d148ffbb706eb12a3e1a1acf"
GOOD = Pointer(M, SHA, 5000000).encode()
BAD_POINTERS = {
    "malformed.bin": b"version git-panini/1\nmanifest zzzz\noid sha256:nothex\nsize twelve\n",
    "truncated.bin": GOOD[:70],
    "unsorted.bin": b"version git-panini/1\nsize 5000000\n" + GOOD.split(b"\n", 1)[1].replace(b"size 5000000\n", b""),
    "crlf.bin": GOOD.replace(b"\n", b"\r\n"),
}


def test_malformed_and_truncated_pointers_are_written_unchanged_with_a_warning(tmp_path, repo):
    for name, data in BAD_POINTERS.items():
        _commit_raw(repo, name, data, f"bad pointer {name}")
    for name, data in BAD_POINTERS.items():
        proc = _recheckout(repo, name)
        assert (repo / name).read_bytes() == data
        assert "git-panini:" in proc.stderr and name in proc.stderr and "invalid pointer" in proc.stderr

    verify = run(["git", "panini", "verify"], cwd=repo, check=False)
    assert verify.returncode == 1
    for name in BAD_POINTERS:
        assert f"FAIL {name}: malformed pointer" in verify.stdout
    assert f"{len(BAD_POINTERS)} FAILED" in verify.stdout

    # pushing a malformed pointer is refused by the pre-push hook, naming it
    other = tmp_path / "other"
    remote, url = make_bare(tmp_path)
    git(repo, "remote", "add", "origin", url)
    push = git(repo, "push", "origin", "main", check=False)
    assert push.returncode != 0
    assert "refusing to push" in push.stderr and "malformed pointer" in push.stderr
    assert git(remote, "rev-parse", "--verify", "-q", "refs/heads/main", check=False).returncode != 0
    # a fresh clone (filter from ~/.gitconfig only) checks them out unchanged too, and succeeds
    git(repo, "push", "-q", "--no-verify", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    proc = clone(url, other)
    for name, data in BAD_POINTERS.items():
        assert (other / name).read_bytes() == data
        assert name in proc.stderr


# --- a corrupted chunk --------------------------------------------------------------------------------


def _explode_packs(repo: Path):
    """Turn every packed object into a loose one (so replacing a loose file is the only copy)."""
    pack_dir = repo / ".git" / "objects" / "pack"
    aside = repo.parent / "packs-aside"
    aside.mkdir(exist_ok=True)
    for pack in sorted(pack_dir.glob("*.pack")):
        for ext in (".pack", ".idx"):
            shutil.move(str(pack.with_suffix(ext)), aside / pack.with_suffix(ext).name)
        with open(aside / pack.name, "rb") as f:
            git(repo, "unpack-objects", "-q", input=f.read())
    assert not list(pack_dir.glob("*.pack"))


def _replace_loose(repo: Path, oid: str, data: bytes):
    path = repo / ".git" / "objects" / oid[:2] / oid[2:]
    assert path.exists()
    path.unlink()
    path.write_bytes(zlib.compress(b"blob %d\0" % len(data) + data))


@pytest.mark.parametrize("fmt", ["sha1", "sha256"])
def test_corrupted_chunk_fails_smudge_and_verify_names_file_chunk_offset(tmp_path, fmt):
    work = make_repo(tmp_path, fmt, name="work", track=("*.bin",))
    digest = sha256_file(write_random(work / "big.bin", 2 * MiB, seed=5))
    git(work, "add", ".gitattributes", "big.bin")
    git(work, "commit", "-q", "-m", "big")
    chunks = manifest_chunks(work, pointer_of(work, "HEAD:big.bin").manifest)
    assert len(chunks) >= 5
    victim, size = chunks[3]
    chunk_offset = sum(s for _, s in chunks[:3])

    _explode_packs(work)
    good = git(work, "cat-file", "blob", victim, binary=True).stdout
    assert len(good) == size
    bad = bytearray(good)
    bad[100] ^= 0x40
    _replace_loose(work, victim, bytes(bad))
    assert git(work, "cat-file", "blob", victim, binary=True).stdout == bytes(bad)   # git serves the bad bytes

    # verify, with the intact working copy to compare against: file, chunk and exact offset
    verify = run(["git", "panini", "verify"], cwd=work, check=False)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "FAIL big.bin" in verify.stdout and victim in verify.stdout
    assert f"offset {chunk_offset + 100}" in verify.stdout
    assert "Traceback" not in verify.stderr

    # smudge refuses to write it: the file stays its pointer text (never wrong bytes) and the checkout goes on
    # (filter.panini.required is set), naming the file, the chunk and where it sits
    proc = _recheckout(work, "big.bin", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "big.bin: left as its pointer" in proc.stderr and victim in proc.stderr
    assert f"offset {chunk_offset}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (work / "big.bin").read_bytes() == git(work, "cat-file", "blob", "HEAD:big.bin", binary=True).stdout

    # without a working copy, verify still names file, chunk and the chunk's offset
    verify = run(["git", "panini", "verify", "--json"], cwd=work, check=False)
    assert verify.returncode == 1
    result = json.loads(verify.stdout)
    assert result["ok"] is False
    (entry,) = result["files"]
    assert entry["path"] == "big.bin" and victim in entry["error"] and f"offset {chunk_offset}" in entry["error"]

    # putting the good bytes back repairs everything
    _replace_loose(work, victim, good)
    _recheckout(work, "big.bin")
    assert sha256_file(work / "big.bin") == digest
    run(["git", "panini", "verify"], cwd=work)

    # the first chunk bad (the filter fails before it sends a byte) is refused the same way
    first, _ = chunks[0]
    first_good = git(work, "cat-file", "blob", first, binary=True).stdout
    _replace_loose(work, first, first_good[:-1] + bytes([first_good[-1] ^ 1]))
    proc = _recheckout(work, "big.bin", check=False)
    assert proc.returncode == 0 and first in proc.stderr and "offset 0" in proc.stderr
    assert (work / "big.bin").read_bytes() == git(work, "cat-file", "blob", "HEAD:big.bin", binary=True).stdout


# --- a missing store ----------------------------------------------------------------------------------


def test_missing_store_ref_without_remote_is_a_clear_error(tmp_path, repo):
    data = write_random(repo / "f.bin", 600_000, seed=8)
    digest = sha256_file(data)
    git(repo, "add", "f.bin")
    git(repo, "commit", "-q", "-m", "f")
    p = pointer_of(repo, "HEAD:f.bin")
    git(repo, "update-ref", "-d", "refs/panini/local")        # what kept the data reachable
    # the objects are still here: nothing is lost just because the ref went away
    _recheckout(repo, "f.bin")
    assert sha256_file(repo / "f.bin") == digest
    # once gc has dropped the unreachable chunks, the data is gone for real: clear errors, non-zero
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "cat-file", "-e", p.manifest, check=False).returncode != 0
    proc = _recheckout(repo, "f.bin", check=False)
    assert proc.returncode == 0   # the file stays its pointer text; the checkout of the others goes on
    assert "f.bin" in proc.stderr and "no remote" in proc.stderr and p.manifest in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (repo / "f.bin").read_bytes() == p.encode()
    verify = run(["git", "panini", "verify"], cwd=repo, check=False)
    assert verify.returncode == 1
    assert "FAIL f.bin" in verify.stdout and "not in this repository" in verify.stdout
    fetch = run(["git", "panini", "fetch"], cwd=repo, check=False)
    assert fetch.returncode == 1 and "no remote" in fetch.stderr
    push = run(["git", "panini", "push"], cwd=repo, check=False)
    assert push.returncode == 1 and "no remote" in push.stderr
    fsck = run(["git", "panini", "fsck"], cwd=repo, check=False)
    assert fsck.returncode == 1 and "f.bin" in fsck.stdout and p.manifest in fsck.stdout


# --- odd but valid input round-trips ------------------------------------------------------------------


def _garbage(seed: int, n: int = 1_500_000) -> bytes:
    return random.Random(seed).randbytes(n)


GARBAGE = {
    "png-sig.png": b"\x89PNG\r\n\x1a\n" + _garbage(1),
    "png-huge-chunk.png": b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 0xFFFFFFF0) + b"IDAT" + _garbage(2),
    "zip-sig.zip": b"PK\x03\x04" + _garbage(3),
    "zip-huge.zip": b"PK\x03\x04" + b"\x14\x00\x00\x00\x00\x00" + b"\0" * 8 + b"\xff\xff\xff\x7f" * 2
                    + b"\xff\xff\x00\x00" + _garbage(4),
    "riff.wav": b"RIFF\xff\xff\xff\xffWAVE" + _garbage(5),
    "jpeg.jpg": b"\xff\xd8\xff\xe0\xff\xff" + _garbage(6),
    "mp4.mp4": struct.pack(">I", 1) + b"ftyp" + struct.pack(">Q", 1 << 62) + _garbage(7),
    "tar.tar": b"x" * 257 + b"ustar\x0000" + _garbage(8),
    "pdf.pdf": b"%PDF-1.7\n" + _garbage(9),
}


def test_garbage_that_claims_a_known_format_round_trips(tmp_path):
    work = make_repo(tmp_path, name="work", track=tuple(f"*{Path(n).suffix}" for n in GARBAGE))
    for name, data in GARBAGE.items():
        (work / name).write_bytes(data)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "garbage")
    for name, data in GARBAGE.items():
        p = pointer_of(work, f"HEAD:{name}")
        assert p.size == len(data)
        assert len(manifest_chunks(work, p.manifest)) >= 2
    dest = _publish_and_clone(tmp_path, work)
    for name, data in GARBAGE.items():
        assert (dest / name).read_bytes() == data, name
    assert git(dest, "status", "--porcelain").stdout == ""
    out = run(["git", "panini", "verify", "--all"], cwd=dest).stdout
    assert f"{len(GARBAGE)} of {len(GARBAGE)} file(s) verified" in out


ODD_PATHS = ["my dir/a b.bin", "x=y.dat", "=leading=.dat", "ünïcødé 日本語.dat", "dir with space/k=v w.dat",
             "a  two  spaces.dat", "emoji 🎨.dat"]


def test_paths_with_spaces_equals_and_unicode_round_trip(tmp_path):
    work = make_repo(tmp_path, name="work", track=("*.dat", "my dir/*.bin"))
    digests = {}
    for i, name in enumerate(ODD_PATHS):
        path = write_random(work / name, 100_000 + i, seed=20 + i)
        digests[name] = sha256_file(path)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "odd paths")
    for name in ODD_PATHS:
        assert pointer_of(work, f"HEAD:{name}").size == 100_000 + ODD_PATHS.index(name)
    listed = run(["git", "panini", "ls-files", "--json"], cwd=work).stdout
    assert sorted(f["path"] for f in json.loads(listed)["files"]) == sorted(ODD_PATHS)
    dest = _publish_and_clone(tmp_path, work)
    for name, digest in digests.items():
        assert sha256_file(dest / name) == digest, name
    assert git(dest, "status", "--porcelain").stdout == ""
    out = run(["git", "panini", "verify", "--all"], cwd=dest).stdout
    assert f"{len(ODD_PATHS)} of {len(ODD_PATHS)} file(s) verified" in out


def test_empty_file_stays_empty(tmp_path):
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    (work / "empty.bin").write_bytes(b"")
    (work / "one.bin").write_bytes(b"1")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "empty")
    assert git(work, "cat-file", "-s", "HEAD:empty.bin").stdout.strip() == "0"
    assert pointer_of(work, "HEAD:one.bin").size == 1
    dest = _publish_and_clone(tmp_path, work)
    assert (dest / "empty.bin").stat().st_size == 0
    assert (dest / "one.bin").read_bytes() == b"1"
    assert git(dest, "status", "--porcelain").stdout == ""
    assert git(dest, "cat-file", "-s", "HEAD:empty.bin").stdout.strip() == "0"


# --- a 2 GiB file, streamed -----------------------------------------------------------------------------

_MEASURE = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss(cmd: list[str], cwd) -> tuple[int, int]:
    """(exit code, peak RSS in bytes of the largest process in the command's tree), measured in a
    fresh interpreter so nothing else this test run started is counted."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], cwd=cwd, capture_output=True, text=True)
    rc, kib = out.stdout.split()[-2:]
    return int(rc), int(kib) * 1024


@pytest.mark.big
def test_2gib_sparse_file_streams_with_bounded_memory(tmp_path, report):
    work = make_repo(tmp_path, name="work", track=("*.bin",))
    big = work / "big.bin"
    size = 2 << 30
    try:
        with open(big, "wb") as f:
            f.truncate(size)
        expected = sha256_file(big)
        rc, rss = _peak_rss(["git", "add", "big.bin"], work)
        report(f"2 GiB sparse file: peak RSS of `git add` (git + filter) {rss / MiB:.1f} MiB")
        assert rc == 0
        assert rss < 400 * MiB
        git(work, "commit", "-q", "-m", "2 GiB")
        assert pointer_of(work, "HEAD:big.bin").size == size
        big.unlink()
        rc, rss = _peak_rss(["git", "checkout", "--", "big.bin"], work)
        report(f"2 GiB sparse file: peak RSS of `git checkout` (git buffers smudge output) {rss / MiB:.1f} MiB")
        assert rc == 0
        assert big.stat().st_size == size
        assert sha256_file(big) == expected
    finally:
        big.unlink(missing_ok=True)
