"""deflate-expand: replace deflate streams that zlib re-creates bit-exactly by their content (precomp's idea)."""

# Streams are re-created by the zlib 1.2.13 bundled with git-panini (_zlib_1_2_13), never by the zlib the
# interpreter links: that one varies between hosts (zlib-ng on Fedora >= 40) and so would its output.
# Python's zlib is used only to inflate and for crc32, whose results every implementation agrees on.

# Container format, version 1 (integers are unsigned LEB128 varints unless noted):
#
#   magic   b"PDX" + version byte 0x01
#   record* one of
#     0x00 LITERAL  len, bytes[len]                       copied verbatim
#     0x01 DEFLATE  params[4], clen, rlen, raw[rlen]      raw deflate of raw with params, exactly clen bytes
#     0x02 PNG      params[4], zhdr[2], adler[4], n, size*n, rlen, raw[rlen]
#                   the zlib stream zhdr + deflate(raw) + adler cut into n IDAT chunks of the given data
#                   sizes, each framed as u32be size, b"IDAT", data, u32be crc32(b"IDAT" + data)
#   0x03 END        total output length, crc32 of the whole output (u32le); nothing may follow
#
# params[4] = zlib level (1-9), memLevel (1-9), window bits (9-15), strategy (0-4). zlib headers and
# adler32, gzip headers and trailers, ZIP headers stay in LITERAL records: only deflate bodies expand.

import itertools
import re
import struct
import zlib

from . import _zlib_1_2_13
from .base import Codec, CodecError, check_keys, int_param

_MAGIC = b"PDX\x01"
_LITERAL, _DEFLATE, _PNG, _END = 0, 1, 2, 3
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MIN_STREAM = 32  # shorter deflate streams cost more in records and searching than they gain
# Recorded in every recipe: the deflate implementation its streams were re-created with. Recipes
# written before it was recorded ("zlib": the encoder's host version) were made by zlib 1.2.13 too.
_DEFLATER = "zlib-1.2.13"
_DEFAULT, _FILTERED, _HUFFMAN_ONLY, _RLE, _FIXED = range(5)  # zlib's strategy numbers

# zlib stream headers (CM=8, no preset dictionary, valid check bits) for every window size.
_ZLIB_HEADERS = [
    bytes([cmf, flg])
    for cmf in range(0x08, 0x80, 0x10)
    for flg in range(256)
    if (cmf << 8 | flg) % 31 == 0 and not flg & 0x20
]
_CANDIDATES = re.compile(
    b"|".join(re.escape(s) for s in [_PNG_SIGNATURE, b"PK\x03\x04", b"\x1f\x8b\x08"] + _ZLIB_HEADERS), re.DOTALL
)

_FLEVEL_HINT = ((1,), (2, 3, 4, 5), (6,), (9, 8, 7))  # zlib header FLEVEL -> levels that write it
_ZIP_FLAG_HINT = ((6,), (9, 8, 7), (2, 3, 4, 5), (1,))  # ZIP general purpose bits 1-2 for method 8
_GZIP_XFL_HINT = {2: (9, 8, 7), 4: (1,)}


class DeflateExpand(Codec):
    id = 6
    name = "deflate-expand"

    def _encode(self, data, params, deps):
        check_keys(params, {"max_tries", "effort", "max_expand"})
        search = _Search(
            max_tries=int_param(params, "max_tries", 1, 4 * 9 * 9 * 7, 64),
            # total bytes fed to trial compressors, as a multiple of the input size
            budget=int_param(params, "effort", 0, 1000, 8) * len(data) + (16 << 20),
        )
        max_expand = int_param(params, "max_expand", 0, 1 << 40, 256 << 20)
        out = bytearray(_MAGIC)
        mv = memoryview(data)
        cursor = pos = streams = expanded = 0
        while expanded < max_expand and (match := _CANDIDATES.search(data, pos)) is not None:
            found = _find_stream(mv, match.start(), match.group(), search, max_expand - expanded)
            if found is None:
                pos = match.start() + 1
                continue
            start, end, record, raw_len = found
            _put_literal(out, mv[cursor:start])
            out += record
            cursor = pos = end
            streams += 1
            expanded += raw_len
        if not streams:
            raise CodecError("no deflate stream in this input is re-creatable by zlib")
        _put_literal(out, mv[cursor:])
        out.append(_END)
        out += _varint(len(data)) + struct.pack("<I", zlib.crc32(data))
        return bytes(out), {"streams": streams, "deflater": _DEFLATER}

    def _decode(self, data, params, deps, max_output):
        check_keys(params, {"streams", "deflater", "zlib"})
        # Before "deflater" was recorded, "zlib" named the encoder's host zlib: only 1.2.13 is the bundled one.
        deflater = params.get("deflater", "zlib-" + str(params.get("zlib", "1.2.13")))
        if deflater != _DEFLATER:
            raise CodecError(f"streams re-created by {deflater[:40]!r}, which this version lacks")
        reader = _Reader(data)
        if reader.take(4) != _MAGIC:
            raise CodecError("not a deflate-expand container (version 1)")
        parts, total, crc = [], 0, 0
        while True:
            tag = reader.byte()
            if tag == _END:
                break
            if tag == _LITERAL:
                piece = reader.take(reader.varint())
            elif tag == _DEFLATE:
                zparams = reader.params()
                clen = reader.varint()
                if total + clen > max_output:
                    raise CodecError(f"output exceeds max_output {max_output}")
                piece = _redeflate(reader.take(reader.varint()), zparams, clen)
            elif tag == _PNG:
                piece = _read_png(reader, max_output - total)
            else:
                raise CodecError(f"unknown record type {tag}")
            total += len(piece)
            if total > max_output:
                raise CodecError(f"output exceeds max_output {max_output}")
            crc = zlib.crc32(piece, crc)
            parts.append(piece)
        declared_total = reader.varint()
        declared_crc = struct.unpack("<I", reader.take(4))[0]
        if not reader.at_end():
            raise CodecError("trailing bytes after the END record")
        if declared_total != total or declared_crc != crc:
            raise CodecError("container checksum mismatch: corrupt data")
        return b"".join(parts)


class _Search:
    """Finds the zlib parameters that re-create a deflate body, within a bounded amount of work."""

    def __init__(self, max_tries: int, budget: int):
        self.max_tries = max_tries
        self.budget = budget
        self.known: list[tuple[int, int, int, int]] = []  # parameters that matched earlier streams

    def find(self, raw: bytes, body: memoryview, levels, wbits: int, png: bool):
        tries = itertools.islice(_unique(self.known, _orders(levels, wbits, png)), self.max_tries)
        for i, params in enumerate(tries):
            # Once the budget is spent, only what already worked and the single likeliest guess are tried.
            if self.budget <= 0 and i > len(self.known):
                break
            ok, fed = _recreates(raw, body, params)
            self.budget -= fed
            if ok:
                if params not in self.known:
                    self.known.append(params)
                return params
        return None


def _unique(*sources):
    seen = set()
    for params in itertools.chain(*sources):
        if params not in seen:
            seen.add(params)
            yield params


def _orders(levels, wbits: int, png: bool):
    """Candidate (level, memLevel, wbits, strategy), most likely first: the hinted levels with memLevel 8
    or 9 (Pillow) and the default or filtered strategy (libpng, Pillow use Z_FILTERED), the header's window."""
    levels = list(levels) + [lv for lv in (6, 9, 1, 5, 4, 3, 2, 8, 7) if lv not in levels]
    first, second = _DEFAULT, _FILTERED
    if png:
        first, second = second, first
    common = ((8, first), (8, second), (9, first), (9, second))
    other_wbits = [w for w in range(15, 8, -1) if w != wbits]
    yield from ((lv, mem, wbits, s) for lv in levels for mem, s in common)
    # Huffman-only and RLE ignore the level beyond choosing their own compress function.
    yield from ((levels[0], 8, wbits, s) for s in (_HUFFMAN_ONLY, _RLE))
    yield from ((lv, 8, w, _DEFAULT) for w in other_wbits for lv in levels)
    yield from ((lv, mem, wbits, _DEFAULT) for mem in range(7, 0, -1) for lv in levels)
    yield from ((lv, 8, wbits, _FIXED) for lv in levels)
    yield from (
        (lv, mem, w, s)
        for s in (_DEFAULT, _FILTERED)
        for mem in range(9, 0, -1)
        for w in [wbits] + other_wbits
        for lv in levels
    )


def _recreates(raw: bytes, body: memoryview, params) -> tuple[bool, int]:
    """Whether the bundled zlib with params turns raw into exactly body (it stops at the first difference)."""
    return _zlib_1_2_13.recreates(raw, body, *params)


def _inflate(mv: memoryview, start: int, wbits: int, limit: int):
    """Inflate the stream at mv[start:]; returns (content, end offset) or None if it is not a whole
    stream within mv or expands beyond limit bytes."""
    dec = zlib.decompressobj(wbits)
    parts, total, pos, step = [], 0, start, 4096
    try:
        while not dec.eof:
            if pos >= len(mv):
                return None
            pending = mv[pos:pos + step]
            pos += len(pending)
            step = min(step * 2, 1 << 20)
            while pending and not dec.eof:
                chunk = dec.decompress(pending, limit + 1 - total)
                total += len(chunk)
                if total > limit:
                    return None
                parts.append(chunk)
                pending = dec.unconsumed_tail
    except zlib.error:
        return None
    return b"".join(parts), pos - len(dec.unused_data)


def _find_stream(mv: memoryview, pos: int, signature: bytes, search: _Search, limit: int):
    """(start, end, record bytes, expanded size) for a re-creatable stream announced at pos, or None."""
    if signature == _PNG_SIGNATURE:
        return _find_png(mv, pos, search, limit)
    if signature == b"PK\x03\x04":
        if pos + 30 > len(mv):
            return None
        flags, method = struct.unpack_from("<HH", mv, pos + 6)
        name_len, extra_len = struct.unpack_from("<HH", mv, pos + 26)
        if method != 8 or flags & 1:  # not deflate, or encrypted
            return None
        return _find_raw(mv, pos + 30 + name_len + extra_len, _ZIP_FLAG_HINT[(flags >> 1) & 3], search, limit)
    if signature == b"\x1f\x8b\x08":
        start = _gzip_body(mv, pos)
        if start is None:
            return None
        return _find_raw(mv, start, _GZIP_XFL_HINT.get(mv[pos + 8], (6,)), search, limit)
    inflated = _inflate(mv, pos, 15, limit)
    if inflated is None:
        return None
    raw, end = inflated
    if end - pos - 6 < _MIN_STREAM:
        return None
    body = mv[pos + 2:end - 4]
    params = search.find(raw, body, _FLEVEL_HINT[mv[pos + 1] >> 6], max((mv[pos] >> 4) + 8, 9), png=False)
    if params is None:
        return None
    return pos + 2, end - 4, _deflate_record(params, len(body), raw), len(raw)


def _find_raw(mv: memoryview, start: int, levels, search: _Search, limit: int):
    inflated = _inflate(mv, start, -15, limit)
    if inflated is None:
        return None
    raw, end = inflated
    if end - start < _MIN_STREAM:
        return None
    params = search.find(raw, mv[start:end], levels, 15, png=False)
    if params is None:
        return None
    return start, end, _deflate_record(params, end - start, raw), len(raw)


def _gzip_body(mv: memoryview, pos: int):
    """Offset of the deflate body of the gzip member at pos, or None for a malformed header."""
    if pos + 10 > len(mv):
        return None
    flags = mv[pos + 3]
    if flags & 0xE0:
        return None
    at = pos + 10
    if flags & 0x04:  # FEXTRA
        if at + 2 > len(mv):
            return None
        at += 2 + struct.unpack_from("<H", mv, at)[0]
    for flag in (0x08, 0x10):  # FNAME, FCOMMENT: zero-terminated
        if flags & flag:
            end = bytes(mv[at:at + 65536]).find(b"\0")
            if end < 0:
                return None
            at += end + 1
    if flags & 0x02:  # FHCRC
        at += 2
    return at if at < len(mv) else None


def _find_png(mv: memoryview, pos: int, search: _Search, limit: int):
    """The run of IDAT chunks of the PNG at pos as one record: the zlib stream spans the chunks."""
    at, sizes, run_start, run_end = pos + 8, [], None, None
    while at + 8 <= len(mv):
        size = struct.unpack_from(">I", mv, at)[0]
        kind = bytes(mv[at + 4:at + 8])
        if kind != b"IDAT" and run_start is not None:
            run_end = at
            break
        if kind == b"IEND" or size > 0x7FFFFFFF or at + 12 + size > len(mv):
            return None
        if kind == b"IDAT":
            run_start = at if run_start is None else run_start
            sizes.append(size)
        at += 12 + size
    if run_end is None:
        return None  # no IDAT, or the run may go on past the end of this segment
    stream = b"".join(_png_payloads(mv[run_start:run_end]))
    if len(stream) < 6 + _MIN_STREAM or (stream[0] << 8 | stream[1]) % 31 or (stream[0] & 0x0F) != 8:
        return None
    inflated = _inflate(memoryview(stream), 0, 15, limit)
    if inflated is None or inflated[1] != len(stream):
        return None
    raw = inflated[0]
    if _png_frame(stream, sizes) != mv[run_start:run_end]:
        return None  # a chunk CRC is wrong, so the framing is not re-creatable
    levels, wbits = _FLEVEL_HINT[stream[1] >> 6], max((stream[0] >> 4) + 8, 9)
    params = search.find(raw, memoryview(stream)[2:-4], levels, wbits, png=True)
    if params is None:
        return None
    record = bytearray([_PNG, *params]) + stream[:2] + stream[-4:] + _varint(len(sizes))
    for size in sizes:
        record += _varint(size)
    record += _varint(len(raw)) + raw
    return run_start, run_end, bytes(record), len(raw)


def _png_payloads(chunks: memoryview):
    at = 0
    while at < len(chunks):
        size = struct.unpack_from(">I", chunks, at)[0]
        yield chunks[at + 8:at + 8 + size]
        at += 12 + size


def _png_frame(stream: bytes, sizes: list[int]) -> bytes:
    out, at = bytearray(), 0
    for size in sizes:
        data = stream[at:at + size]
        at += size
        out += struct.pack(">I", size) + b"IDAT" + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(b"IDAT")))
    return bytes(out)


def _read_png(reader: "_Reader", room: int) -> bytes:
    zparams = reader.params()
    header, adler = reader.take(2), reader.take(4)
    count = reader.varint()
    if count * 12 > room:
        raise CodecError("PNG record exceeds max_output")
    sizes, stream_len = [], 0
    for _ in range(count):
        sizes.append(reader.varint())
        stream_len += sizes[-1]
    if stream_len + count * 12 > room:
        raise CodecError("PNG record exceeds max_output")
    if stream_len < 6:
        raise CodecError("PNG record is too short for a zlib stream")
    body = _redeflate(reader.take(reader.varint()), zparams, stream_len - 6)
    return _png_frame(header + body + adler, sizes)


def _redeflate(raw: bytes, params, clen: int) -> bytes:
    body = _zlib_1_2_13.deflate_raw(raw, *params)
    if len(body) != clen:
        raise CodecError(f"re-deflated stream is {len(body)} bytes, expected {clen}: corrupt data")
    return body


def _deflate_record(params, clen: int, raw: bytes) -> bytes:
    return bytes([_DEFLATE, *params]) + _varint(clen) + _varint(len(raw)) + raw


def _put_literal(out: bytearray, data: memoryview) -> None:
    if len(data):
        out.append(_LITERAL)
        out += _varint(len(data))
        out += data


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise CodecError("container is truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value = 0
        for shift in range(0, 63, 7):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
        raise CodecError("varint too long")

    def params(self) -> tuple[int, int, int, int]:
        level, mem, wbits, strategy = self.take(4)
        if not (1 <= level <= 9 and 1 <= mem <= 9 and 9 <= wbits <= 15 and 0 <= strategy <= 4):
            raise CodecError("invalid zlib parameters in container")
        return level, mem, wbits, strategy

    def at_end(self) -> bool:
        return self.pos == len(self.data)
