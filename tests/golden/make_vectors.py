"""Writes golden vectors: small encoded inputs per codec and chain, decoded by tests/test_golden.py forever.

A vector, once committed, is never rewritten: this script only adds the ones vectors.json lacks. Run it
(`python tests/golden/make_vectors.py`) after adding a codec or a chain worth pinning, and commit the
new files. The inputs are built here, deterministically; only their encoded form and sha256 are kept.
"""

import gzip
import hashlib
import io
import json
import random
import struct
import sys
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from git_panini import codecs  # noqa: E402
from git_panini.codecs import _zlib_1_2_13  # noqa: E402


def _text() -> bytes:
    rng = random.Random(1)
    words = "chunk pack recipe manifest store notes remote worker deflate stream lossless verify".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(300)]
    return ("\n".join(lines) + "\n").encode()


def _binary() -> bytes:
    rng = random.Random(2)
    table = bytes(rng.randrange(256) for _ in range(512))
    # x86-ish: call instructions with relative targets, so the BCJ filter has something to do
    out = bytearray()
    for i in range(2000):
        out += b"\xe8" + struct.pack("<i", rng.randrange(-4096, 4096)) + table[i % 97:i % 97 + 3]
    return bytes(out)


def _zlib_stream(raw: bytes, level: int, strategy: int) -> bytes:
    """A zlib stream as libpng writes it, deflated by the bundled zlib so every host builds the same one."""
    return b"\x78\xda" + _zlib_1_2_13.deflate_raw(raw, level, 8, 15, strategy) + struct.pack(">I", zlib.adler32(raw))


def _png(width: int = 48, height: int = 48) -> bytes:
    rows = b"".join(b"\x01" + bytes((x * 5 + y * 3) & 0xFF for x in range(width * 3)) for y in range(height))
    idat = _zlib_stream(rows, 9, 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _jpeg() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata([((x * 4) & 0xFF, (y * 5) & 0xFF, (x * y) & 0xFF) for y in range(48) for x in range(64)])
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _vectors():
    text, binary, png, jpeg = _text(), _binary(), _png(), _jpeg()
    wheel = _zip({"pkg/__init__.py": text, "pkg/data.bin": binary})
    gz = gzip.compress(text, mtime=0)
    yield "store-text", text, [("store", {})]
    yield "zstd-19-text", text, [("zstd", {"level": 19})]
    yield "zstd-22-long-binary", binary, [("zstd", {"level": 22, "long": 27})]
    yield "zstd-dict-text", text, [("zstd", {"level": 19, "dict": "DICT"})]
    yield "xz-9e-text", text, [("xz", {"preset": 9, "extreme": True})]
    yield "xz-bcj-x86-binary", binary, [("xz", {"preset": 9, "extreme": True, "bcj": "x86"})]
    yield "brotli-11-text", text, [("brotli", {"quality": 11, "lgwin": 24})]
    yield "ppmd-8-text", text, [("ppmd", {"order": 8, "mem": 16 << 20})]
    yield "deflate-expand-png", png, [("deflate-expand", {})]
    yield "deflate-expand-xz-png", png, [("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})]
    yield "deflate-expand-zip", wheel, [("deflate-expand", {}), ("zstd", {"level": 19})]
    yield "deflate-expand-gzip", gz, [("deflate-expand", {})]
    yield "deflate-expand-twice-zip-of-png", _zip({"a.png": png, "b.txt": text}), [
        ("deflate-expand", {}), ("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})]
    yield "deflate-expand-ppmd-6-png", png, [("deflate-expand", {}), ("ppmd", {"order": 6, "mem": 64 << 20})]
    yield "deflate-expand-zstd-12-zip", wheel, [("deflate-expand", {}), ("zstd", {"level": 12})]
    yield "xz-3-bcj-x86-binary", binary, [("xz", {"preset": 3, "bcj": "x86"})]
    yield "jpeg-lepton", jpeg, [("jpeg-lepton", {})]
    yield "jpeg-jxl", jpeg, [("jpeg-jxl", {})]


def main() -> None:
    index_path = HERE / "vectors.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else []
    known = {vector["name"] for vector in index}
    for name, data, chain in _vectors():
        if name in known:
            continue
        deps, dep_files = {}, {}
        for _, params in chain:
            if params.get("dict") == "DICT":
                dictionary = codecs.train_zstd_dict([data[i:i + 512] for i in range(0, len(data), 512)], 1024)
                oid = hashlib.sha1(b"blob %d\0" % len(dictionary) + dictionary).hexdigest()
                params["dict"] = oid
                deps[oid] = dictionary
                dep_files[oid] = f"{name}.dict"
                (HERE / dep_files[oid]).write_bytes(dictionary)
        encoded, steps = codecs.encode_chain(data, chain, deps)
        assert codecs.decode_chain(encoded, steps, deps, len(data)) == data
        (HERE / f"{name}.bin").write_bytes(encoded)
        index.append({"name": name, "file": f"{name}.bin", "deps": dep_files, "steps": steps,
                      "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        print(f"added {name}: {len(data)} -> {len(encoded)} bytes")
    index_path.write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
