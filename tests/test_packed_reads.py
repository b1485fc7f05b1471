"""Packed reads end to end: files packed by lepton, jxl, deflate-expand and ppmd are read back from the packs
alone (raw chunks gone after gc, here and on the remote) by `git panini verify` and by a fresh clone's
checkout; and the smudge filter streams in bounded memory."""

from __future__ import annotations

import io
import json
import os
import random
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import (MiB, clone, git, ls_tree, make_bare, make_repo, manifest_chunks, pointer_of, run, sha256_file,
                      write_random, write_text)
from git_panini import codecs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.reads import big_blob  # noqa: E402

# `git panini work` with every codec but `allowed` refusing to encode: whatever the planner tries, the pack
# can only be made by the codecs under test (or stored, which the recipe check below rejects).
FORCED_WORK = """
import sys
from git_panini import codecs
from git_panini.codecs.base import CodecError
allowed = set(sys.argv.pop(1).split(","))
for codec in codecs.all_codecs():
    if codec.name not in allowed:
        def refuse(data, params, deps, name=codec.name):
            raise CodecError(f"{name} is switched off by the test")
        codec._encode = refuse
sys.argv[0] = "git-panini"
from git_panini.entry import main
main()
"""


def _photo(seed: int, kind: str) -> bytes:
    from PIL import Image, ImageFilter
    rng = random.Random(seed)
    w, h = 480, 360
    noise = Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3)).filter(ImageFilter.GaussianBlur(2))
    img = Image.blend(noise, Image.linear_gradient("L").resize((w, h)).convert("RGB"), 0.4)
    buf = io.BytesIO()
    img.save(buf, "JPEG" if kind == "jpeg" else "PNG", quality=90)
    return buf.getvalue()


def _wheel(seed: int) -> bytes:
    """A wheel-like ZIP (deflated members, as pip and zipfile write them) of some stdlib sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(stdlib.glob("*.py"))
    random.Random(seed).shuffle(sources)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sources[:12]:
            z.write(path, "pkg/" + path.name)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES = {
    # name: (codec that must appear in every recipe, codecs allowed to encode, effort, files to add)
    "lepton": ("jpeg-lepton", "jpeg-lepton", 2, lambda d: [_write(d / "photo.jpg", _photo(1, "jpeg"))]),
    "jxl": ("jpeg-jxl", "jpeg-jxl", 2, lambda d: [_write(d / "photo.jpg", _photo(2, "jpeg"))]),
    "deflate-expand": ("deflate-expand", "deflate-expand,ppmd,xz", 2,
                       lambda d: [_write(d / "image.png", _photo(3, "png")), _write(d / "pkg.whl", _wheel(4))]),
    "ppmd": ("ppmd", "ppmd", 2, lambda d: [write_text(d / "notes.txt", 600_000, seed=5)]),
}


def _recipes(path) -> list[dict]:
    return [json.loads(git(path, "cat-file", "blob", oid).stdout)
            for name, (_, oid, _) in ls_tree(path, "refs/panini/store", "packs").items()]


def _reachable(path) -> set[str]:
    return {line.split()[0] for line in git(path, "rev-list", "--objects", "--all").stdout.splitlines()}


def _assert_gone(path, chunks: set[str]):
    """The raw chunk blobs are neither reachable nor stored at all in this repository."""
    assert not chunks & _reachable(path)
    for chunk in chunks:
        assert git(path, "cat-file", "-e", chunk, check=False).returncode != 0, chunk


@pytest.mark.parametrize("case", list(CASES))
def test_packs_are_read_end_to_end_after_gc(tmp_path, case):
    codec_name, allowed, effort, make = CASES[case]
    for name in allowed.split(","):
        if not codecs.get(name).available():
            pytest.skip(f"codec {name} is not available here")
    path = make_repo(tmp_path, track=("*.jpg", "*.png", "*.whl", "*.txt"))
    files = make(path)
    digests = {f.name: sha256_file(f) for f in files}
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", case)
    remote, url = make_bare(tmp_path)
    git(path, "remote", "add", "origin", url)
    git(path, "push", "-q", "origin", "main")
    chunks = {c for name in digests for c, _ in manifest_chunks(path, pointer_of(path, f"HEAD:{name}").manifest)}
    assert chunks <= _reachable(path)

    git(path, "config", "panini.profile", "archive")   # the codec under test, though the files are hot
    run([sys.executable, "-c", FORCED_WORK, allowed, "work", "--remote", "origin", "--effort", str(effort)],
        cwd=path, env={"PYTHONPATH": str(ROOT)})

    # Every chunk is yielded by a pack whose chain uses the codec under test.
    recipes = _recipes(path)
    assert recipes and {c for r in recipes for c, _, _ in r["chunks"]} == chunks
    for recipe in recipes:
        assert codec_name in [step["codec"] for step in recipe["steps"]], recipe["steps"]
    assert _recipes(remote) == recipes

    for where in (path, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
        _assert_gone(where, chunks)

    out = run(["git", "panini", "verify", "--all"], cwd=path).stdout
    assert f"{len(files)} of {len(files)} file(s) verified bit-perfect" in out
    for f in files:
        f.unlink()
    git(path, "checkout", "--", ".")
    assert {f.name: sha256_file(f) for f in files} == digests

    run(["git", "panini", "install", "--global"], cwd=tmp_path)   # the filter a fresh clone runs
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    assert {name: sha256_file(fresh / name) for name in digests} == digests
    # The raw chunks it holds it decoded from the packs (the remote has none), kept by its read cache alone.
    run(["git", "panini", "prune", "--cache-only"], cwd=fresh)
    git(fresh, "gc", "-q", "--prune=now")
    _assert_gone(fresh, chunks)
    assert git(fresh, "status", "--porcelain").stdout == ""
    out = run(["git", "panini", "verify"], cwd=fresh).stdout
    assert f"{len(files)} of {len(files)} file(s) verified bit-perfect" in out


# --- smudge in bounded memory ---------------------------------------------------------------------------------


def _filter_peak_rss(repo, what: str, size: int, seed: int, pointer: str | None = None) -> int:
    """Peak RSS (KiB) of `git panini filter-process` smudging one file, driven by bench.reads (Git itself
    buffers a smudged file whole, so the filter is measured without it)."""
    args = [sys.executable, "-m", "bench.reads", "smudge", str(repo), what, str(size), str(seed)]
    out = run(args + ([pointer] if pointer else []), env={"PYTHONPATH": str(ROOT)}).stdout
    return json.loads(out)["peak_rss_kib"]


def test_a_non_pointer_blob_is_smudged_through_a_spool_not_memory(tmp_path):
    size = 160 * MiB
    path = make_repo(tmp_path, track=("*.bin",))
    rss = _filter_peak_rss(path, "blob", size, seed=3)
    assert rss < 120 * 1024, f"the filter held {rss // 1024} MiB to pass a {size // MiB} MiB blob through"
    assert not [n for n in os.listdir(path / ".git" / "panini") if n.startswith("tmp")]


def test_a_file_committed_before_it_was_tracked_checks_out_unchanged(tmp_path):
    path = make_repo(tmp_path)
    digest = sha256_file(write_random(path / "old.bin", 20 * MiB, seed=6))
    small = _write(path / "small.bin", b"version git-panini/1\nnot really a pointer\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "before tracking")
    run(["git", "panini", "track", "*.bin"], cwd=path)
    git(path, "add", ".gitattributes")
    git(path, "commit", "-q", "-m", "track")
    (path / "old.bin").unlink()
    small.unlink()
    proc = git(path, "checkout", "--", ".")
    assert sha256_file(path / "old.bin") == digest
    assert small.read_bytes() == b"version git-panini/1\nnot really a pointer\n"
    assert "invalid pointer" in proc.stderr


def test_smudge_of_a_packed_file_stays_bounded(tmp_path):
    size = 160 * MiB
    path = make_repo(tmp_path, track=("*.bin",))
    with open(path / "big.bin", "wb") as f:
        for block in big_blob(7, size):
            f.write(block)
    git(path, "add", "big.bin")
    git(path, "commit", "-q", "-m", "big")
    run(["git", "panini", "work", "--no-remote", "--effort", "0"], cwd=path)
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")
    assert json.loads(run(["git", "panini", "fsck", "--json"], cwd=path).stdout)["counts"]["raw_chunks"] == 0
    pointer = git(path, "cat-file", "blob", "HEAD:big.bin").stdout
    rss = _filter_peak_rss(path, "pointer", size, seed=7, pointer=pointer)
    assert rss < 120 * 1024, f"the filter held {rss // 1024} MiB to smudge a packed {size // MiB} MiB file"


def test_a_spool_that_cannot_be_written_fails_the_file_in_one_line(tmp_path):
    path = make_repo(tmp_path)
    write_random(path / "old.bin", 20 * MiB, seed=8)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "before tracking")
    run(["git", "panini", "track", "*.bin"], cwd=path)
    (path / "old.bin").unlink()
    # Files may grow to 4 MiB (ulimit -f): the 8 MiB spool cannot roll over to disk, as on a full disk.
    proc = run(["bash", "-c", "ulimit -f 4096 && git checkout -- old.bin"], cwd=path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "smudge old.bin: cannot hold the file while git sends it" in proc.stderr, proc.stderr
    assert not (path / "old.bin").exists()
