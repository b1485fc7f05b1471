"""Golden vectors: encoded data checked in once and decoded on every run, the proof that a released codec
id decodes the same forever; and packs decoded under a host whose zlib is zlib-ng, not zlib."""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from conftest import (MiB, clone, git, ls_tree, make_bare, make_repo, manifest_chunks, pointer_of, run, sha256_file,
                      write_text)
from git_panini import codecs
from git_panini.codecs import _zlib_1_2_13

GOLDEN = Path(__file__).parent / "golden"
VECTORS = json.loads((GOLDEN / "vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_golden_vector_decodes_to_its_recorded_sha256(vector):
    deps = {oid: (GOLDEN / name).read_bytes() for oid, name in vector["deps"].items()}
    data = codecs.decode_chain((GOLDEN / vector["file"]).read_bytes(), vector["steps"], deps, vector["size"])
    assert hashlib.sha256(data).hexdigest() == vector["sha256"]


def test_every_codec_id_has_a_golden_vector():
    covered = {step["id"] for vector in VECTORS for step in vector["steps"]}
    missing = sorted(codec.name for codec in codecs.all_codecs() if codec.id not in covered)
    assert not missing, f"no golden vector for {missing}: run tests/golden/make_vectors.py and commit"


def test_codec_libraries_are_pinned_to_the_versions_installed():
    """Packs decode through these libraries: each is pinned to one version, the one these vectors ran under."""
    tomllib = pytest.importorskip("tomllib")
    from importlib.metadata import version
    pyproject = tomllib.loads((GOLDEN.parents[1] / "pyproject.toml").read_text())
    pins = dict(dep.split("==") for dep in pyproject["project"]["dependencies"] if "==" in dep)
    needed = {codec.requires[1] for codec in codecs.all_codecs() if codec.requires}
    assert needed and needed <= set(pins), f"codec libraries not pinned with ==: {sorted(needed - set(pins))}"
    assert {name: version(name) for name in needed} == {name: pins[name] for name in needed}


def test_deflate_expand_records_the_bundled_deflater():
    steps = [s for v in VECTORS for s in v["steps"] if s["codec"] == "deflate-expand"]
    assert steps and all(s["params"]["deflater"] == "zlib-1.2.13" for s in steps)
    with pytest.raises(codecs.CodecError, match="which this version lacks"):
        vector = next(v for v in VECTORS if v["name"] == "deflate-expand-png")
        steps = json.loads(json.dumps(vector["steps"]))
        steps[0]["params"]["deflater"] = "zlib-ng-2.2"
        codecs.decode_chain((GOLDEN / vector["file"]).read_bytes(), steps, {}, vector["size"])


def test_bundled_zlib_matches_zlib_1_2_13_and_not_zlib_ng():
    """The bundled deflater writes what zlib 1.2.13 writes; zlib-ng writes other bytes, which is why a
    reader must never re-create streams with whatever zlib its interpreter links."""
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")
    raw = b"".join(b"%d %s\n" % (i, b"panini" * (i % 7)) for i in range(20000))
    for level, mem, wbits, strategy in [(6, 8, 15, 0), (9, 9, 15, 1), (1, 8, 12, 0), (9, 8, 15, 3)]:
        ours = _zlib_1_2_13.deflate_raw(raw, level, mem, wbits, strategy)
        assert zlib.decompress(ours, -15) == raw
        if zlib.ZLIB_RUNTIME_VERSION == "1.2.13":
            host = zlib.compressobj(level, zlib.DEFLATED, -wbits, mem, strategy)
            assert host.compress(raw) + host.flush() == ours
        assert _zlib_1_2_13.recreates(raw, ours, level, mem, wbits, strategy) == (True, len(raw))
        assert _zlib_1_2_13.recreates(raw, ours[:-1], level, mem, wbits, strategy)[0] is False
    ng = zlib_ng.compressobj(6, zlib.DEFLATED, -15, 8, 0)
    assert ng.compress(raw) + ng.flush() != _zlib_1_2_13.deflate_raw(raw, 6, 8, 15, 0)


def test_bundled_zlib_rejects_bad_parameters():
    with pytest.raises(ValueError):
        _zlib_1_2_13.deflate_raw(b"x", 10, 8, 15, 0)
    with pytest.raises(ValueError):
        _zlib_1_2_13.recreates(b"x", b"", 6, 8, 8, 0)


# --- end to end under zlib-ng ------------------------------------------------------------------------


def _png(path: Path, width: int, height: int, seed: int, level: int, strategy: int) -> Path:
    """An RGB PNG as libpng or Pillow writes it (deflated by the bundled zlib, so the test builds the same
    file on any host)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x01" + bytes((x // 3 + y + rng.randrange(8)) & 0xFF for x in range(width * 3))
                    for y in range(height))
    idat = b"\x78\xda" + _zlib_1_2_13.deflate_raw(rows, level, 8, 15, strategy) + struct.pack(">I", zlib.adler32(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    """A ZIP of deflated members at level 6, as pip and zipfile write wheels."""
    out, central = bytearray(), bytearray()
    for name, data in members.items():
        body, crc, encoded = _zlib_1_2_13.deflate_raw(data, 6, 8, 15, 0), zlib.crc32(data), name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x5C21, crc, len(body), len(data))
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(encoded), 0, 0, 0,
                                                                                0, 0, len(out)) + encoded
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded + body
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def test_packs_decode_in_a_fresh_clone_whose_python_zlib_is_zlib_ng(tmp_path, monkeypatch):
    pytest.importorskip("zlib_ng.zlib_ng")
    work = make_repo(tmp_path, name="work", track=("*.png", "*.whl"))
    _png(work / "a.png", 512, 384, seed=1, level=6, strategy=0)
    _png(work / "b.png", 300, 200, seed=2, level=9, strategy=1)
    members = {f"pkg/mod{i}.py": write_text(tmp_path / f"m{i}", MiB // 4, seed=i).read_bytes() for i in range(4)}
    _wheel(work / "pkg-1.0-py3-none-any.whl", members)
    import zipfile
    with zipfile.ZipFile(work / "pkg-1.0-py3-none-any.whl") as archive:  # the hand-written ZIP is a valid one
        assert archive.testzip() is None and archive.read("pkg/mod0.py") == members["pkg/mod0.py"]
    digests = {p.name: sha256_file(p) for p in work.iterdir() if p.is_file() and p.suffix in (".png", ".whl")}
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "files")
    bare, url = make_bare(tmp_path)
    git(work, "remote", "add", "origin", url)
    git(work, "push", "-q", "origin", "main")
    git(work, "config", "panini.profile", "archive")   # deflate-expand, though the files are hot
    run(["git", "panini", "work", "--remote", "origin", "--effort", "2"], cwd=work)  # effort 1 skips PNGs
    codecs_of = {}  # chunk id -> codecs of the pack that yields it
    for _, oid, _ in ls_tree(work, "refs/panini/store", "packs").values():
        recipe = json.loads(git(work, "cat-file", "-p", oid).stdout)
        for chunk, _, _ in recipe["chunks"]:
            codecs_of[chunk] = {step["codec"] for step in recipe["steps"]}
    for name in digests:
        for chunk, _ in manifest_chunks(work, pointer_of(work, f"HEAD:{name}").manifest):
            assert "deflate-expand" in codecs_of[chunk], f"{name} was not packed with deflate-expand"
    for repo in (work, bare):  # the raw chunks are gone everywhere: only the packs can give the files back
        git(repo, "reflog", "expire", "--expire=now", "--all")
        git(repo, "gc", "-q", "--prune=now")

    # Every Python process from here on (git panini, the filter git starts) imports zlib-ng as `zlib`.
    site = tmp_path / "site"
    site.mkdir()
    marker = tmp_path / "zlib-ng-used"
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""\
        import sys
        import zlib_ng.zlib_ng
        sys.modules["zlib"] = zlib_ng.zlib_ng
        with open({str(marker)!r}, "a") as f:
            f.write("x")
    """))
    monkeypatch.setenv("PYTHONPATH", str(site))
    probe = run([sys.executable, "-c", "import zlib; print(zlib.__name__)"]).stdout.strip()
    assert probe == "zlib_ng.zlib_ng"
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    for name, digest in digests.items():
        assert sha256_file(fresh / name) == digest, name
    fsck = json.loads(run(["git", "panini", "fsck", "--json"], cwd=fresh).stdout)
    assert fsck["ok"] and fsck["counts"]["raw_chunks"] == 0, "the clone read raw chunks, not packs"
    out = run(["git", "panini", "verify", "--all"], cwd=fresh).stdout
    assert f"{len(digests)} of {len(digests)} file(s) verified bit-perfect" in out
    assert len(marker.read_text()) >= 3  # probe, clone's filter, verify all ran under zlib-ng
