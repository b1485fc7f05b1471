"""Codec conformance suite: every registered codec runs the same round-trip and hostile-input tests."""

import gzip
import io
import json
import lzma
import random
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from conftest import bomb
from git_panini import codecs
from git_panini.codecs import CodecError, decode_chain, encode_chain

# Recipes in repositories name codecs by these ids: this table may only ever grow.
EXPECTED_TABLE = {
    "store": 1,
    "zstd": 2,
    "xz": 3,
    "brotli": 4,
    "ppmd": 5,
    "deflate-expand": 6,
    "jpeg-lepton": 7,
    "jpeg-jxl": 8,
}
ALL_NAMES = list(EXPECTED_TABLE)
GENERAL = ["store", "zstd", "xz", "brotli", "ppmd"]
JPEG = ["jpeg-lepton", "jpeg-jxl"]
MIB = 1 << 20


def _rng_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _text() -> bytes:
    rng = random.Random(1)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(400)]
    lines = (b" ".join(rng.choices(words, k=rng.randint(3, 14))) for _ in range(2500))
    return b"\n".join(lines) + b"\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width=256, height=128, idat_size=8192, level=6, strategy=zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """An RGB PNG whose zlib stream is split over several IDAT chunks, as libpng writes them."""
    rng = random.Random(2)
    rows = []
    for y in range(height):
        row = bytearray([1])  # filter type Sub
        for x in range(width):
            row += bytes([(x + y) & 0xFF, (x * y >> 4) & 0xFF, rng.randrange(8)])
        rows.append(bytes(row))
    comp = zlib.compressobj(level, zlib.DEFLATED, 15, 8, strategy)
    stream = comp.compress(b"".join(rows)) + comp.flush()
    idats = b"".join(_png_chunk(b"IDAT", stream[i:i + idat_size]) for i in range(0, len(stream), idat_size))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + idats + _png_chunk(b"IEND", b"")


def _photo(width: int, height: int):
    """A photo-like Pillow image (blurred shapes over a gradient, light noise), or None without Pillow."""
    try:
        from PIL import Image, ImageDraw, ImageFilter
    except ImportError:
        return None
    rng = random.Random(4)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(width // 64 + 1, width // 7)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    image = image.filter(ImageFilter.GaussianBlur(3))
    noise = Image.frombytes("RGB", image.size, _rng_bytes(width * height * 3, 5))
    return Image.blend(image, noise, 0.08)


def _pillow_png() -> bytes | None:
    """A PNG as Pillow writes it (zlib level 6, memLevel 9, Z_FILTERED), or None without Pillow."""
    image = _photo(320, 240)
    if image is None:
        return None
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _zip(compresslevel=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for path in sorted(Path(json.__file__).parent.glob("*.py")):
            zf.writestr(zipfile.ZipInfo(path.name, (2020, 1, 1, 0, 0, 0)), path.read_bytes(), zipfile.ZIP_DEFLATED)
        zf.writestr("data/text.txt", _text())
        zf.writestr("data/random.bin", _rng_bytes(5000, 3))
    return buf.getvalue()


def _jpeg() -> bytes | None:
    """A photo-like JPEG from Pillow, else one found on this machine, else None (tests skip)."""
    image = _photo(640, 480)
    if image is None:
        for root in ("/usr/share", "/usr/lib", "/opt"):
            for path in Path(root).rglob("*.jpg"):
                if path.stat().st_size > 10_000:
                    return path.read_bytes()
        return None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


TEXT = _text()
RANDOM = _rng_bytes(100_000, 6)
ZIP = _zip()
PNG = _png()
GZIP = gzip.compress(TEXT, compresslevel=9, mtime=0)
ZLIB = zlib.compress(TEXT, 9)
MIXED = RANDOM[:3000] + ZIP + TEXT[:5000] + GZIP + PNG + ZLIB + RANDOM[-2000:]
JPEG_DATA = _jpeg()
PILLOW_PNG = _pillow_png()


def _inputs(name: str) -> list[tuple[str, bytes]]:
    """Inputs the codec is meant for; each must round-trip."""
    if name == "deflate-expand":
        inputs = [("zip", ZIP), ("zip9", _zip(9)), ("png", PNG), ("png-filtered", _png(strategy=zlib.Z_FILTERED)),
                  ("gzip", GZIP), ("zlib", ZLIB), ("mixed", MIXED)]
        return inputs + ([("pillow-png", PILLOW_PNG)] if PILLOW_PNG else [])
    if name in JPEG:
        if JPEG_DATA is None:
            pytest.skip("no JPEG available (install Pillow)")
        return [("jpeg", JPEG_DATA)]
    return [("text", TEXT), ("random", RANDOM), ("empty", b""), ("one", b"x")]


@pytest.fixture(params=ALL_NAMES)
def codec(request):
    codec = codecs.get(request.param)
    if not codec.available():
        pytest.skip(f"{codec.name} library not installed")
    return codec


@pytest.fixture
def encoded(codec):
    """(label, original, encoded, recorded params) for every suitable input, encoded once."""
    out = []
    for label, data in _inputs(codec.name):
        enc, recorded = codec.encode(data, {}, {})
        out.append((label, data, enc, recorded))
    return out


def _decodes_to_original_or_fails(codec, data, params, original, max_output):
    """The only acceptable outcomes for damaged input: a CodecError, or exactly the original bytes."""
    start = time.monotonic()
    try:
        out = codec.decode(data, params, {}, max_output)
    except CodecError:
        out = None
    assert time.monotonic() - start < 10, "decode took too long"
    assert out is None or out == original


# --- registry ---------------------------------------------------------------------------------------------

def test_table_is_stable():
    assert {c.name: c.id for c in codecs.all_codecs()} == EXPECTED_TABLE
    assert all(c.version == 1 for c in codecs.all_codecs())


def test_get_by_name_and_id():
    for name, codec_id in EXPECTED_TABLE.items():
        assert codecs.get(name) is codecs.get(codec_id)
    for bad in ("nope", 0, 99, True, None, 3.0, b"zstd"):
        with pytest.raises(CodecError, match="unknown codec"):
            codecs.get(bad)


def test_general_codecs_always_available():
    assert all(codecs.get(name).available() for name in GENERAL + ["deflate-expand"])


# --- conformance: every codec ------------------------------------------------------------------------------

def test_round_trip(codec, encoded):
    for label, data, enc, recorded in encoded:
        json.dumps(recorded)  # recorded params go into the recipe
        assert codec.decode(enc, recorded, {}, len(data)) == data, label
        assert codec.decode(enc, json.loads(json.dumps(recorded)), {}, len(data) + 100) == data, label
        blob, steps = encode_chain(data, [(codec.name, {})], {})
        assert steps == [{"codec": codec.name, "id": codec.id, "params": recorded, "size": len(data)}]
        assert decode_chain(blob, json.loads(json.dumps(steps)), {}, len(data)) == data


def test_refuses_unsuitable_input(codec):
    if codec.name in GENERAL:
        pytest.skip("general codecs accept any input")
    for data in (TEXT, RANDOM, b""):
        with pytest.raises(CodecError):
            codec.encode(data, {}, {})


def test_rejects_unknown_and_malformed_params(codec):
    data = _inputs(codec.name)[0][1]
    with pytest.raises(CodecError):
        codec.encode(data, {"no-such-param": 1}, {})
    with pytest.raises(CodecError):
        codec.encode(data, "not a dict", {})
    enc, recorded = codec.encode(data, {}, {})
    for params in ({**recorded, "no-such-param": 1}, "not a dict", None, [recorded]):
        with pytest.raises(CodecError):
            codec.decode(enc, params, {}, len(data))
    # Every recorded value replaced by junk: either still the original (value unused) or a CodecError.
    for key in recorded:
        for junk in ("x", -1, 1 << 70, True, None, [1]):
            _decodes_to_original_or_fails(codec, enc, {**recorded, key: junk}, data, len(data))


def test_max_output_too_small(codec, encoded):
    for label, data, enc, recorded in encoded:
        if data:
            with pytest.raises(CodecError):
                codec.decode(enc, recorded, {}, len(data) - 1)
            with pytest.raises(CodecError):
                codec.decode(enc, recorded, {}, 0)
        for bad in (-1, 1.5, None, "10"):
            with pytest.raises(CodecError):
                codec.decode(enc, recorded, {}, bad)


def test_truncated(codec, encoded):
    for label, data, enc, recorded in encoded:
        for cut in sorted({0, 1, 2, len(enc) // 3, len(enc) // 2, len(enc) - 4, len(enc) - 1}):
            if not 0 <= cut < len(enc):
                continue
            if codec.name == "store":
                # store has no framing: the recipe's size check in decode_chain catches it
                assert codec.decode(enc[:cut], recorded, {}, len(data)) == enc[:cut]
            else:
                with pytest.raises(CodecError):
                    codec.decode(enc[:cut], recorded, {}, len(data))
            with pytest.raises(CodecError):
                decode_chain(enc[:cut], [{"codec": codec.name, "id": codec.id, "params": recorded,
                                          "size": len(data)}], {}, len(data))


def test_trailing_garbage(codec, encoded):
    for label, data, enc, recorded in encoded:
        if codec.name == "store":
            continue
        _decodes_to_original_or_fails(codec, enc + b"\0", recorded, data, len(data) + 10)
        _decodes_to_original_or_fails(codec, enc + enc, recorded, data, 2 * len(data) + 10)


def test_random_garbage(codec, encoded):
    label, data, enc, recorded = encoded[0]
    for i, n in enumerate((1, 7, 64, 1000, 50_000)):
        garbage = _rng_bytes(n, 100 + i)
        if codec.name != "store":
            _decodes_to_original_or_fails(codec, garbage, recorded, data, max(len(data), 1))
        with pytest.raises(CodecError):
            decode_chain(garbage, [{"codec": codec.name, "id": codec.id, "params": recorded,
                                    "size": len(data)}], {}, len(data))


def test_flipped_bytes(codec, encoded):
    if codec.name == "store":
        pytest.skip("store has no integrity check of its own; object hashes catch flips")
    rng = random.Random(7)
    for label, data, enc, recorded in encoded:
        if not enc:
            continue
        positions = range(len(enc)) if len(enc) <= 40 else rng.sample(range(len(enc)), 40)
        for pos in positions:
            damaged = bytearray(enc)
            damaged[pos] ^= 1 << rng.randrange(8)
            _decodes_to_original_or_fails(codec, bytes(damaged), recorded, data, len(data))


# --- decompression bombs -----------------------------------------------------------------------------------

BOMBS = {  # codec: (zeros compressed, committed by tests/data/bombs/make.py; the params they were made with)
    "zstd": ("zeros-1GiB-level1.zst", {"level": 1}),
    "xz": ("zeros-1GiB-preset0.xz", {"preset": 0, "extreme": False}),   # 256 KiB dictionary fits the memlimit
    "brotli": ("zeros-256MiB-quality0.br", {"quality": 0, "lgwin": 22, "crc32": 0}),
}


@pytest.mark.parametrize("name", ["zstd", "xz", "brotli"])
def test_bomb_fails_fast_without_allocating(name):
    codec = codecs.get(name)
    if not codec.available():
        pytest.skip(f"{name} library not installed")
    file, params = BOMBS[name]
    data = bomb(file)
    tracemalloc.start()  # output buffers are Python objects, so tracemalloc sees an unbounded decode
    start = time.monotonic()
    try:
        with pytest.raises(CodecError, match="max_output"):
            codec.decode(data, params, {}, MIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    assert peak - len(data) < 16 * MIB, f"decoding a bomb with max_output 1 MiB peaked at {peak / MIB:.0f} MiB"


def test_xz_hostile_dictionary_exceeds_memlimit():
    hostile = lzma.compress(bytes(MIB), format=lzma.FORMAT_XZ, preset=9)  # declares a 64 MiB dictionary
    with pytest.raises(CodecError):
        codecs.get("xz").decode(hostile, {}, {}, 64 * 1024)


def test_ppmd_size_lie_is_refused_before_decoding():
    codec = codecs.get("ppmd")
    enc, recorded = codec.encode(TEXT, {}, {})
    with pytest.raises(CodecError, match="max_output"):
        codec.decode(enc, {**recorded, "size": 1 << 40}, {}, MIB)
    with pytest.raises(CodecError):
        codec.decode(enc, {**recorded, "mem": 1 << 40}, {}, len(TEXT))


# A regression vector (issue 19): 200,000 bytes of CPython 3.11's standard library sources (Debian's
# /usr/lib/python3.11/*.py concatenated in name order, from byte 39,595) on which one pyppmd 1.3.1 encode() call
# at order 8 loses bytes where its output crosses 32 KiB, so the stream does not decode.
PPMD_LOST_BYTES = Path(__file__).parent / "data" / "ppmd-lost-bytes.py.xz"


def test_ppmd_streams_decode_where_one_pyppmd_call_loses_bytes():
    pyppmd = pytest.importorskip("pyppmd")
    data = lzma.decompress(PPMD_LOST_BYTES.read_bytes())
    params = {"order": 8, "mem": 256 << 20}
    encoded, steps = encode_chain(data, [("ppmd", params)], {})
    assert decode_chain(encoded, steps, {}, len(data)) == data
    one_call = pyppmd.Ppmd7Encoder(8, 256 << 20)
    stream = one_call.encode(data) + one_call.flush()
    # The vector still shows the bug it guards against (with pyppmd as pinned in pyproject.toml).
    assert len(stream) == len(encoded) - 1
    with pytest.raises(CodecError):
        decode_chain(stream, steps, {}, len(data))


# --- zstd specifics -----------------------------------------------------------------------------------------

def test_zstd_dictionary_and_long_window():
    zstd = codecs.get("zstd")
    samples = [b"record %d: name=alpha kind=%s value=%d\n" % (i, b"xyz"[i % 3:], i * 7) * 3 for i in range(400)]
    dictionary = codecs.train_zstd_dict(samples, 4096)
    assert 0 < len(dictionary) <= 4096
    deps = {"0123abcd": dictionary}
    data = b"".join(samples[::7])
    enc, recorded = zstd.encode(data, {"level": 19, "dict": "0123abcd"}, deps)
    assert recorded == {"level": 19, "dict": "0123abcd"}
    assert zstd.decode(enc, recorded, deps, len(data)) == data
    with pytest.raises(CodecError, match="missing dictionary 0123abcd"):
        zstd.decode(enc, recorded, {}, len(data))
    with pytest.raises(CodecError, match="missing dictionary"):
        decode_chain(enc, [{"codec": "zstd", "id": 2, "params": recorded, "size": len(data)}], {}, len(data))
    with pytest.raises(CodecError):
        zstd.encode(data, {"dict": "feed"}, {})
    with pytest.raises(CodecError):
        zstd.decode(enc, {**recorded, "dict": 42}, deps, len(data))

    big = TEXT * 20
    enc, recorded = zstd.encode(big, {"level": 3, "long": 27}, {})
    assert recorded == {"level": 3, "long": 27}
    assert zstd.decode(enc, recorded, {}, len(big)) == big


def test_train_zstd_dict_with_too_few_samples():
    with pytest.raises(CodecError):
        codecs.train_zstd_dict([b"a"], 4096)


# --- deflate-expand specifics -------------------------------------------------------------------------------

def test_deflate_expand_finds_every_stream():
    dx = codecs.get("deflate-expand")
    members = len(zipfile.ZipFile(io.BytesIO(ZIP)).infolist())
    assert dx.encode(ZIP, {}, {})[1]["streams"] == members
    assert dx.encode(PNG, {}, {})[1]["streams"] == 1
    assert dx.encode(MIXED, {}, {})[1]["streams"] == members + 3


def test_deflate_expand_stream_cut_by_segment_end():
    dx = codecs.get("deflate-expand")
    data = GZIP + ZIP[: len(ZIP) // 2]  # the ZIP's central directory and later members are missing
    enc, recorded = dx.encode(data, {}, {})
    assert dx.decode(enc, recorded, {}, len(data)) == data
    with pytest.raises(CodecError):
        dx.encode(PNG[: len(PNG) // 2], {}, {})  # IDAT run incomplete: nothing to expand


def test_deflate_expand_bad_png_crc_is_left_alone():
    dx = codecs.get("deflate-expand")
    bad = bytearray(PNG)
    first_idat = PNG.index(b"IDAT")
    bad[first_idat + 4 + 8192] ^= 0xFF  # the first IDAT chunk's CRC
    with pytest.raises(CodecError):
        dx.encode(bytes(bad), {}, {})


def test_deflate_expand_search_cap():
    dx = codecs.get("deflate-expand")
    stream = zlib.compressobj(9, zlib.DEFLATED, -15, 3, zlib.Z_DEFAULT_STRATEGY)
    body = stream.compress(TEXT) + stream.flush()
    gz = b"\x1f\x8b\x08\0\0\0\0\0\0\xff" + body + struct.pack("<II", zlib.crc32(TEXT), len(TEXT))
    with pytest.raises(CodecError):
        dx.encode(gz, {"max_tries": 5}, {})
    enc, recorded = dx.encode(gz, {"max_tries": 500}, {})  # memLevel 3 is found by the wider search
    assert dx.decode(enc, recorded, {}, len(gz)) == gz


def _container(*records: bytes, total: int = 0, crc: int = 0) -> bytes:
    return b"PDX\x01" + b"".join(records) + b"\x03" + bytes([total]) + struct.pack("<I", crc)


@pytest.mark.parametrize("container", [
    b"",
    b"PDX\x02\x03\x00\0\0\0\0",  # unknown version
    _container(b"\x07"),  # unknown record type
    _container(b"\x00\x05abc"),  # literal longer than the data
    _container(b"\x01\x06\x08\x0f\x00" + b"\xff" * 9 + b"\x7f" + b"\x01x"),  # absurd clen
    _container(b"\x01\x0a\x08\x0f\x00\x05\x01x"),  # level 10
    _container(b"\x01\x06\x08\x0f\x00\x05\x01x"),  # clen does not match the re-deflated length
    _container(b"\x02\x06\x08\x0f\x00\x78\x9c\0\0\0\0" + b"\xff" * 8 + b"\x7f"),  # absurd IDAT count
    _container(b"\x02\x06\x08\x0f\x00\x78\x9c\0\0\0\0\x01\x03\x00"),  # IDAT shorter than a zlib stream
    b"PDX\x01" + b"\x00\x01a" + b"\x00" * 20,  # no END record
    _container(b"\x00\x01a", total=1, crc=zlib.crc32(b"a")) + b"x",  # bytes after END
    _container(b"\x00\x01a", total=2, crc=zlib.crc32(b"a")),  # total lies
    _container(b"\x00\x01a", total=1, crc=0),  # crc lies
    b"PDX\x01\x00" + b"\x80" * 20,  # endless varint
])
def test_deflate_expand_hostile_containers(container):
    with pytest.raises(CodecError):
        codecs.get("deflate-expand").decode(container, {}, {}, 1 << 30)


def test_deflate_expand_output_bound_checked_before_deflating():
    raw = bytes(10 * MIB)
    body = zlib.compress(raw, 9)[2:-4]
    container = _container(b"\x01\x09\x08\x0f\x00" + _varint(len(body)) + _varint(len(raw)) + raw)
    start = time.monotonic()
    with pytest.raises(CodecError, match="max_output"):
        codecs.get("deflate-expand").decode(container, {}, {}, 1000)
    assert time.monotonic() - start < 0.5


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


# --- chains and hostile recipes -----------------------------------------------------------------------------

def test_chain_round_trip_and_recipe_shape():
    blob, steps = encode_chain(MIXED, [("deflate-expand", {}), ("xz", {"preset": 6}), ("zstd", {"level": 3})], {})
    assert [s["codec"] for s in steps] == ["deflate-expand", "xz", "zstd"]
    assert [s["id"] for s in steps] == [6, 3, 2]
    assert steps[0]["size"] == len(MIXED) and steps[1]["size"] > len(MIXED)
    assert decode_chain(blob, json.loads(json.dumps(steps)), {}, len(MIXED)) == MIXED
    assert encode_chain(TEXT, [], {}) == (TEXT, [])
    assert decode_chain(TEXT, [], {}, len(TEXT)) == TEXT


def test_encode_chain_rejects_bad_chains():
    for chain in ("xz", [("xz",)], [("nope", {})], [("xz", {"preset": 12})], [["xz", {}, 1]], None):
        with pytest.raises(CodecError):
            encode_chain(TEXT, chain, {})
    with pytest.raises(CodecError):
        encode_chain(TEXT, [("deflate-expand", {})], {})  # no deflate stream: the planner skips this chain


def _recipe():
    blob, steps = encode_chain(TEXT, [("zstd", {"level": 3}), ("xz", {})], {})
    return blob, steps


@pytest.mark.parametrize("mutate", [
    lambda s: {"not": "a list"},
    lambda s: None,
    lambda s: "zstd",
    lambda s: [s[0], "xz"],
    lambda s: [s[0], {**s[1], "id": 999}],
    lambda s: [s[0], {**s[1], "id": "3"}],
    lambda s: [s[0], {**s[1], "id": True}],
    lambda s: [s[0], {**s[1], "codec": "brotli"}],
    lambda s: [s[0], {k: v for k, v in s[1].items() if k != "size"}],
    lambda s: [s[0], {k: v for k, v in s[1].items() if k != "params"}],
    lambda s: [s[0], {k: v for k, v in s[1].items() if k != "id"}],
    lambda s: [s[0], {**s[1], "extra": 1}],
    lambda s: [s[0], {**s[1], "size": s[1]["size"] + 1}],
    lambda s: [s[0], {**s[1], "size": s[1]["size"] - 1}],
    lambda s: [s[0], {**s[1], "size": -1}],
    lambda s: [s[0], {**s[1], "size": "12"}],
    lambda s: [s[0], {**s[1], "size": 1.0 * s[1]["size"]}],
    lambda s: [s[0], {**s[1], "params": [1]}],
    lambda s: [{**s[0], "size": s[0]["size"] + 1}, s[1]],
    lambda s: [{**s[0], "size": 10}, s[1]],
    lambda s: [s[1], s[0]],
    lambda s: [s[1]],
    lambda s: [],
])
def test_decode_chain_hostile_recipes(mutate):
    blob, steps = _recipe()
    assert decode_chain(blob, steps, {}, len(TEXT)) == TEXT
    with pytest.raises(CodecError):
        decode_chain(blob, mutate(steps), {}, len(TEXT))


def test_decode_chain_output_size_checks():
    blob, steps = _recipe()
    for size in (len(TEXT) + 1, len(TEXT) - 1, 0, -1, None, "1"):
        with pytest.raises(CodecError):
            decode_chain(blob, steps, {}, size)


def test_unavailable_codec_decode_says_what_is_missing(monkeypatch):
    lepton = codecs.get("jpeg-lepton")
    monkeypatch.setattr(type(lepton), "requires", ("no_such_module_for_test", "lepton-jpeg-python"))
    assert not lepton.available()
    with pytest.raises(CodecError, match="codec jpeg-lepton needs lepton-jpeg-python"):
        lepton.decode(b"\xcf\x84" + bytes(40), {"crc32": 0}, {}, MIB)
    with pytest.raises(CodecError, match="codec jpeg-lepton needs lepton-jpeg-python"):
        encode_chain(b"\xff\xd8", [("jpeg-lepton", {})], {})


# --- ratios (informational; run with -s to see them) --------------------------------------------------------

def test_ratios_against_xz_9e(capsys):
    xz9e = lambda data: len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))  # noqa: E731
    rows = []
    samples = [("zip (python zipfile)", ZIP, True), ("png (multi-IDAT)", PNG, True)]
    if PILLOW_PNG:
        # noisy photo pixels: xz on the raw scanlines barely beats deflate, so no gain is asserted
        samples.append(("png (Pillow photo)", PILLOW_PNG, False))
    for label, data, must_win in samples:
        blob, _ = encode_chain(data, [("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})], {})
        rows.append((label, "deflate-expand+xz", len(data), len(blob), xz9e(data)))
        assert len(blob) < xz9e(data) or not must_win
    if JPEG_DATA is not None:
        for name in JPEG:
            if codecs.get(name).available():
                blob, _ = encode_chain(JPEG_DATA, [(name, {})], {})
                rows.append(("jpeg (Pillow q88)", name, len(JPEG_DATA), len(blob), xz9e(JPEG_DATA)))
                assert len(blob) < xz9e(JPEG_DATA)
    with capsys.disabled():
        print()
        for label, chain, size, ours, xz in rows:
            print(f"{label:22s} {chain:18s} {size:8d} B -> {ours:8d} B ({ours / size:6.1%});"
                  f" xz -9e {xz:8d} B ({xz / size:6.1%}); ours/xz {ours / xz:.3f}")
