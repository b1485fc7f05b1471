"""Structural boundary scanners: offsets on real files, stream invariance, hostile input."""

import io
import random
import struct
import tarfile
import time
import wave
import zipfile
import zlib

import pytest

from git_panini.format.structure import MAX_LAG, SNIFF_BYTES, boundaries, scanner_for


def _rand(n, seed=0):
    return random.Random(seed).randbytes(n)


# --- sample files, each with its expected boundaries computed independently of the scanner ---


def _zip_sample():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("stored.txt"), b"hello " * 500)
        zf.writestr("deflated.txt", b"compressible " * 2000, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("random.bin", _rand(70000), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("empty", b"")
        zf.writestr("dir/", b"")
        with zf.open("zip64.bin", "w", force_zip64=True) as f:
            f.write(_rand(3000, 1))
        zf.writestr("last.txt", b"tail")
    data = buf.getvalue()
    expected = set()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
            expected |= {info.header_offset, info.header_offset + 30 + name_len + extra_len}
        expected.add(zf.start_dir)
    return data, sorted(expected - {0})


def _png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_sample():
    width, height = 64, 32
    raw = b"".join(b"\0" + _rand(width * 3, y) for y in range(height))
    stream = zlib.compress(raw)
    third = len(stream) // 3
    thirds = [stream[:third], stream[third : 2 * third], stream[2 * third :]]
    chunks = [
        ("IHDR", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))),
        ("tEXt", _png_chunk(b"tEXt", b"Comment\0before")),
        ("IDAT", _png_chunk(b"IDAT", thirds[0])),
        ("IDAT+", _png_chunk(b"IDAT", thirds[1])),
        ("IDAT+", _png_chunk(b"IDAT", thirds[2])),
        ("tEXt", _png_chunk(b"tEXt", b"Comment\0after")),
        ("IEND", _png_chunk(b"IEND", b"")),
    ]
    data, expected = b"\x89PNG\r\n\x1a\n", []
    for label, chunk in chunks:
        if label != "IDAT+":  # continuation IDATs stay in the first IDAT's unit
            expected.append(len(data))
        data += chunk
    return data, expected


def _wav_sample():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(_rand(4 * 3001))
    data = buf.getvalue()
    return data, [data.index(b"fmt "), data.index(b"data")]


def _riff_node(node, at, expected):
    """Serialize (ckid, payload) or (b"LIST", type, children) at offset `at`, recording chunk starts."""
    expected.append(at)
    if node[0] == b"LIST":
        body = node[1]
        for child in node[2]:
            body += _riff_node(child, at + 8 + len(body), expected)
    else:
        body = node[1]
    return node[0] + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _avi_sample():
    tree = [
        (
            b"LIST",
            b"hdrl",
            [(b"avih", _rand(56)), (b"LIST", b"strl", [(b"strh", _rand(5)), (b"strf", _rand(40))])],
        ),
        (b"JUNK", b"abc"),
        (b"LIST", b"movi", [(b"00dc", _rand(1001, k)) for k in range(3)]),
        (b"idx1", _rand(64)),
    ]
    expected = []
    body = b"AVI "
    for node in tree:
        body += _riff_node(node, 8 + len(body), expected)
    return b"RIFF" + struct.pack("<I", len(body)) + body, expected


def _tar_sample(fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:

        def add(name, payload=b"", **attrs):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            for key, value in attrs.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(payload))

        long_names = fmt != tarfile.USTAR_FORMAT
        add("small.txt", b"hi")
        # Without a slash to split at, a long name needs a pax or GNU long-name header.
        add("x" * 150 if long_names else "sub/" * 30 + "f", _rand(1500))
        add("dir", type=tarfile.DIRTYPE)
        add("empty.txt")
        add("link", type=tarfile.SYMTYPE, linkname="y" * (120 if long_names else 20))
        add("block.bin", _rand(512, 2))
        add("last.bin", _rand(513, 3))
    data = buf.getvalue()
    return data, _tar_expected(data)


def _tar_expected(data):
    expected = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for member in tf.getmembers():
            expected |= {member.offset, member.offset_data - 512, member.offset_data}
        expected.add(tf.offset)  # the end-of-archive blocks
    return sorted(expected - {0})


def _fix_tar_checksum(header):
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


def _tar_pax_size_sample():
    """A member whose ustar size field says 0 and whose real size is in its pax header."""
    payload = _rand(3000, 4)
    info = tarfile.TarInfo("sized.bin")
    info.size = len(payload)
    info.pax_headers = {"size": str(len(payload))}
    block = bytearray(info.tobuf(tarfile.PAX_FORMAT))
    header = block[-512:]
    header[124:136] = b"00000000000\0"
    _fix_tar_checksum(header)
    block[-512:] = header
    tail = tarfile.TarInfo("after.txt")
    tail.size = 5
    data = bytes(block) + payload + b"\0" * (-len(payload) % 512) + tail.tobuf() + b"after" + b"\0" * 1531
    return data, _tar_expected(data)


def _jpeg_segment(code, payload):
    return bytes([0xFF, code]) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_sample():
    parts = [
        ("SOI", b"\xff\xd8"),
        ("mark", _jpeg_segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")),
        ("mark", b"\xff\xff"),  # fill bytes before a marker belong to it
        ("", _jpeg_segment(0xDB, b"\0" + bytes(range(64)))),
        ("mark", _jpeg_segment(0xC2, b"\x08\0\x10\0\x10\x01\x01\x11\0")),
        ("mark", _jpeg_segment(0xC4, b"\0" + bytes(16) + b"")),
        ("mark", _jpeg_segment(0xDA, b"\x01\x01\0\0\x3f\0")),
        ("mark", b"\x12\x34\xff\x00\x56" + _rand(300).replace(b"\xff", b"\xff\x00") + b"\xff\xd0\x9a\xff\x00"),
        ("", b"\xff"),  # a fill byte before RST
        ("", b"\xff\xd1" + b"\xbc" * 10),  # RST and stuffing are part of the entropy data
        ("", b"\xff\xff"),  # in entropy data, the marker is the FF right before the code
        ("mark", _jpeg_segment(0xC4, b"\x10" + bytes(16))),
        ("mark", _jpeg_segment(0xDA, b"\x01\x01\0\0\x3f\0")),
        ("mark", _rand(200, 1).replace(b"\xff", b"\xff\x00")),
        ("", b"\xff\xd9"),  # EOI is no boundary: its 2-byte chunk would dedup across all JPEGs
    ]
    data, expected = b"", []
    for label, part in parts:
        if label == "mark":
            expected.append(len(data))
        data += part
    return data, expected


def _box(kind, payload, large=False):
    if large:
        return struct.pack(">I", 1) + kind + struct.pack(">Q", 16 + len(payload)) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mp4_sample():
    boxes = [
        _box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
        _box(b"free", b""),
        _box(b"mdat", _rand(5000), large=True),
        _box(b"moov", _box(b"mvhd", bytes(100))),
        _box(b"uuid", bytes(16) + b"x"),
    ]
    data, expected = b"", []
    for box in boxes:
        expected.append(len(data))
        data += box
    return data, expected[1:]


SAMPLES = {
    "zip": ("zip", _zip_sample),
    "png": ("png", _png_sample),
    "wav": ("riff", _wav_sample),
    "avi": ("riff", _avi_sample),
    "tar-pax": ("tar", lambda: _tar_sample(tarfile.PAX_FORMAT)),
    "tar-gnu": ("tar", lambda: _tar_sample(tarfile.GNU_FORMAT)),
    "tar-ustar": ("tar", lambda: _tar_sample(tarfile.USTAR_FORMAT)),
    "tar-pax-size": ("tar", _tar_pax_size_sample),
    "jpeg": ("jpeg", _jpeg_sample),
    "mp4": ("isobmff", _mp4_sample),
}


def _feed_blocks(data, sizes):
    """Feed data to a fresh scanner in blocks whose lengths come from the iterator `sizes`."""
    scanner = scanner_for(data[:SNIFF_BYTES])
    if scanner is None:
        return []
    found, i = [], 0
    view = memoryview(data)
    while i < len(data):
        n = next(sizes)
        found += scanner.feed(view[i : i + n] if n % 2 else bytearray(data[i : i + n]))
        found += scanner.feed(b"")
        i += n
    return found


def _check_sane(data, limit_s=2.0):
    start = time.perf_counter()
    found = boundaries(data)
    assert time.perf_counter() - start < limit_s
    assert all(b > a for a, b in zip([0] + found, found)), found
    assert not found or found[-1] < len(data)  # a unit is reported only once its first byte is there
    return found


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_boundaries(name):
    fmt, build = SAMPLES[name]
    data, expected = build()
    assert scanner_for(data[:SNIFF_BYTES]).format_name == fmt
    assert boundaries(data) == expected


def test_tar_v7_header_without_magic():
    data, expected = _tar_sample(tarfile.USTAR_FORMAT)
    header = bytearray(data[:512])
    header[257:265] = bytes(8)  # a v7 header: no magic, only the checksum vouches for it
    _fix_tar_checksum(header)
    assert boundaries(bytes(header) + data[512:]) == expected


def test_png_via_pillow():
    image_module = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image_module.frombytes("RGB", (300, 200), _rand(300 * 200 * 3)).save(buf, "PNG")
    data = buf.getvalue()
    expected, at, previous = [], 8, None
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        if not (kind == previous == b"IDAT"):
            expected.append(at)
        previous, at = kind, at + 12 + length
    assert boundaries(data) == expected


def test_jpeg_via_pillow():
    image_module = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image_module.frombytes("RGB", (64, 48), _rand(64 * 48 * 3)).save(buf, "JPEG", progressive=True)
    found = boundaries(buf.getvalue())
    assert found[-1] < len(buf.getvalue()) - 2  # EOI is not a boundary
    assert sum(buf.getvalue()[b : b + 2] == b"\xff\xda" for b in found) > 1  # several scans


def test_zip_data_descriptor_stops_after_first_data_start():
    class Unseekable(io.BytesIO):
        def seek(self, *args):
            raise io.UnsupportedOperation("unseekable")

    buf = Unseekable()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", b"x" * 1000, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("b.txt", b"y" * 1000)
    data = buf.getvalue()
    assert struct.unpack_from("<H", data, 6)[0] & 8
    name_len, extra_len = struct.unpack_from("<HH", data, 26)
    assert boundaries(data) == [30 + name_len + extra_len]


def test_mp4_box_to_end_of_file():
    data = _box(b"ftyp", b"isom\0\0\0\0") + struct.pack(">I", 0) + b"mdat" + _rand(1000)
    assert boundaries(data) == [16]


@pytest.mark.parametrize("name", SAMPLES)
def test_stream_invariance(name):
    data, _ = SAMPLES[name][1]()
    whole = boundaries(data)
    rng = random.Random(name)
    assert _feed_blocks(data, iter(lambda: 1, None)) == whole
    assert _feed_blocks(data, iter(lambda: 7, None)) == whole
    for _ in range(5):
        assert _feed_blocks(data, iter(lambda: rng.randint(1, 100000), None)) == whole
        assert _feed_blocks(data, iter(lambda: rng.randint(1, 600), None)) == whole


@pytest.mark.parametrize("name", SAMPLES)
def test_reported_soon_after_their_offset(name):
    """The chunker may emit a chunk as soon as its bytes are fed: boundaries must not come late."""
    data, expected = SAMPLES[name][1]()
    scanner = scanner_for(data[:SNIFF_BYTES])
    for fed in range(1, len(data) + 1):
        for boundary in scanner.feed(data[fed - 1 : fed]):
            assert boundary < fed <= boundary + MAX_LAG


@pytest.mark.parametrize("name", SAMPLES)
def test_truncated(name):
    data, expected = SAMPLES[name][1]()
    cuts = {1, 2, 3, 4, 7, 8, 11, 12, 13, 20, 100, 511, 512, 513}
    cuts |= {len(data) // 3, len(data) // 2, len(data) - 1}
    cuts |= {b + d for b in expected for d in (-1, 0, 1, 2, 5)}
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        found = _check_sane(data[:cut])
        assert found == expected[: len(found)]  # what a prefix reveals agrees with the whole file


MAGICS = {
    "zip": b"PK\x03\x04",
    "png": b"\x89PNG\r\n\x1a\n",
    "jpeg": b"\xff\xd8\xff",
    "riff": b"RIFF\x00\x10\x00\x00WAVE",
    "mp4": b"\x00\x00\x00\x18ftyp",
}


@pytest.mark.parametrize("magic", MAGICS.values(), ids=MAGICS)
def test_garbage_after_magic(magic):
    for seed in range(30):
        data = magic + _rand(2000 if seed < 25 else 3_000_000, seed)
        _check_sane(data)
        if len(data) < 5000:
            assert _feed_blocks(data, iter(lambda: 1, None)) == boundaries(data)


@pytest.mark.parametrize("name", SAMPLES)
def test_garbage_inside_valid_file(name):
    data, _ = SAMPLES[name][1]()
    rng = random.Random(name)
    for _ in range(40):
        spoilt = bytearray(data)
        at = rng.randrange(len(data))
        spoilt[at : at + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
        found = _check_sane(bytes(spoilt))
        assert _feed_blocks(bytes(spoilt), iter(lambda: rng.randint(1, 50), None)) == found


def _tar_header(name, size_field, kind=b"0"):
    header = bytearray(512)
    header[: len(name)] = name
    header[124:136] = size_field
    header[156:157] = kind
    header[257:263] = b"ustar\0"
    _fix_tar_checksum(header)
    return bytes(header)


HOSTILE = {
    "png-huge-length": b"\x89PNG\r\n\x1a\n" + b"\xff\xff\xff\xffIDAT" + bytes(100),
    "png-zero-length-loop": b"\x89PNG\r\n\x1a\n" + (b"\0\0\0\0tEXt\0\0\0\0") * 20000,
    "mp4-size-below-header": b"\0\0\0\x10ftyp" + bytes(8) + b"\0\0\0\x04free" * 100,
    "mp4-huge-size": b"\xff\xff\xff\xffftyp" + bytes(100),
    "mp4-huge-largesize": b"\0\0\0\x01ftyp" + b"\xff" * 8 + bytes(100),
    "mp4-largesize-too-small": b"\0\0\0\x01ftyp" + struct.pack(">Q", 8) + bytes(100),
    "riff-huge-sizes": b"RIFF\xff\xff\xff\xffWAVE" + b"fmt \xff\xff\xff\xff" + bytes(100),
    "riff-zero-size-loop": b"RIFF\0\0\0\0WAVE" + b"JUNK\0\0\0\0" * 20000,
    "riff-nested-empty-lists": b"RIFF\xff\xff\xff\xffAVI " + b"LIST\x04\0\0\0abcd" * 5000,
    "riff-list-overruns": b"RIFF\x20\0\0\0AVI " + b"LIST\xff\0\0\0hdrl" + bytes(100),
    "zip-huge-csize": b"PK\x03\x04" + bytes(14) + b"\xfe\xff\xff\xff" + bytes(8) + bytes(100),
    "zip-zero-size-loop": (b"PK\x03\x04" + bytes(26)) * 20000,
    "zip-bad-zip64": b"PK\x03\x04" + bytes(14) + b"\xff" * 8 + b"\x01\0\x08\0a" + b"\x01\0\x10\0abcdefgh",
    "zip-huge-name": b"PK\x03\x04" + bytes(14) + b"\xff" * 12 + bytes(100),
    "jpeg-zero-length": b"\xff\xd8\xff\xe0\0\0" + bytes(100),
    "jpeg-length-two-loop": b"\xff\xd8" + b"\xff\xfe\0\x02" * 20000,
    "jpeg-fill-forever": b"\xff\xd8" + b"\xff" * 200000,
    "jpeg-entropy-all-ff": b"\xff\xd8\xff\xda\0\x02" + b"\xff" * 200000,
    "jpeg-entropy-stuffing": b"\xff\xd8\xff\xda\0\x02" + b"\xff\x00" * 200000,
    "tar-zero-size-loop": _tar_header(b"a", b"00000000000\0") * 3000,
    "tar-huge-base256": _tar_header(b"a", b"\x80" + b"\xff" * 11) + bytes(1000),
    "tar-negative-base256": _tar_header(b"a", b"\xff" * 12) + bytes(1000),
    "tar-bad-pax": _tar_header(b"p", b"00000000020\0", b"x") + b"0 size=1\n999 siz" + bytes(1000),
    "tar-pax-zero-length-record": _tar_header(b"p", b"00000000012\0", b"x") + b"0 a=b\n" + bytes(1000),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE)
def test_hostile(data):
    assert scanner_for(data[:SNIFF_BYTES]) is not None
    found = _check_sane(data)
    rng = random.Random(len(data))
    assert _feed_blocks(data, iter(lambda: rng.randint(1, 3000), None)) == found


def test_huge_skips_are_cheap():
    """Passing over GiBs of member data costs per feed call, not per byte."""
    scanner = scanner_for(_box(b"ftyp", b"isom"))
    mdat_header = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 16 + (1 << 40))
    assert scanner.feed(_box(b"ftyp", b"isom") + mdat_header) == [12]
    block = bytes(8 << 20)
    start = time.perf_counter()
    for _ in range(200):
        assert scanner.feed(block) == []
    assert time.perf_counter() - start < 1.0


def test_no_format():
    assert scanner_for(b"") is None
    assert boundaries(b"") == []
    for seed in range(50):
        assert scanner_for(_rand(SNIFF_BYTES, seed)) is None
        assert boundaries(_rand(1000, seed)) == []
    assert scanner_for(b"hello world, this is plain text " * 40) is None
    assert scanner_for(bytes(1024)) is None
