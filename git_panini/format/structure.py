"""Structural boundaries of known file formats, found in a stream, for chunk cut points."""

import math
import re
import struct

SNIFF_BYTES = 512  # how many leading bytes scanner_for() wants to see (tar needs 262+)

# A boundary at offset X is reported at the latest by the feed() after which X + MAX_LAG bytes
# have been fed; mostly X + 1, as a unit is reported once its first byte arrives. Only the chunk
# after a PNG IDAT run (its type must be seen) and JPEG markers in entropy data (FF, code) lag more.
MAX_LAG = 8

_MAX_HEADER = 8192  # most a parser may buffer at once; anything bigger is skipped or ends the scan

# Steps a parser generator yields: (_READ, n) receives the next n bytes, (_SKIP, n) passes over
# n bytes, (_SCAN, 0) passes over JPEG entropy-coded data and receives the marker code ending it.
_READ, _SKIP, _SCAN = range(3)

# A marker inside JPEG entropy-coded data: FF followed by neither stuffing (00), RSTn nor fill (FF).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_FOURCC = re.compile(rb"[\x20-\x7e]{4}")
_HIGH_BYTES = bytes(range(128, 256))
_BMFF_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"}


class StructureScanner:
    """Drives a format's parser (the generator _parse()) over a stream fed in arbitrary blocks.

    Only headers are buffered; skipping is arithmetic, so a feed costs O(1) per structural unit
    (JPEG entropy data excepted, which is searched for markers at C speed). The boundaries found
    depend on the bytes only, never on how they were split into blocks.
    """

    format_name = ""

    def __init__(self):
        self._pos = 0  # absolute offset of the next byte to consume
        self._last = 0  # highest offset reported; later reports must exceed it
        self._pending = None  # a unit start whose first byte has not been fed yet
        self._found = []
        self._buf = bytearray()  # the part of a pending _READ received so far
        self._ff = False  # _SCAN: the last byte consumed was an FF that may begin a marker
        self._parser = self._parse()
        self._step = None
        self._resume(None)

    def feed(self, data) -> list[int]:
        """Consume the next bytes of the file; return the boundaries discovered since the last call."""
        view = memoryview(data).cast("B")
        size, i = len(view), 0
        while self._step is not None:
            op, n = self._step
            if op == _SKIP:
                take = min(n, size - i)
                i += take
                self._pos += take
                if take < n:
                    self._step = (_SKIP, n - take)
                    break
                self._resume(None)
            elif op == _READ:
                take = min(n - len(self._buf), size - i)
                self._buf += view[i : i + take]
                i += take
                self._pos += take
                if len(self._buf) < n:
                    break
                header = bytes(self._buf)
                self._buf.clear()
                self._resume(header)
            else:
                code, j = self._scan(view, i)
                self._pos += j - i
                i = j
                if code is None:
                    break
                self._resume(code)
        if self._step is None:  # the parse is over: the rest is unstructured
            self._pos += size - i
        self._flush()
        found, self._found = self._found, []
        return found

    def _resume(self, value):
        try:
            self._step = self._parser.send(value)
        except Exception:  # StopIteration ends the parse, and so does anything hostile input provokes
            self._step = None

    def _mark(self, offset):
        """A unit starts at offset. It is reported once its first byte has been fed, so that the
        end of the file (where the last length field points, but nothing starts) never is."""
        self._flush()
        self._pending = offset
        self._flush()

    def _flush(self):
        if self._pending is not None and self._pos > self._pending:
            if self._pending > self._last:  # zero-length units put two starts on one offset
                self._last = self._pending
                self._found.append(self._pending)
            self._pending = None

    def _scan(self, view, i):
        """Pass over entropy-coded data in view[i:]: (marker code, index after it) or (None, len(view))."""
        if self._ff and i < len(view):
            self._ff = False
            code = view[i]
            if code not in (0x00, 0xFF) and not 0xD0 <= code <= 0xD7:
                return code, i + 1
        match = _JPEG_MARKER.search(view, i)
        if match:
            return view[match.end() - 1], match.end()
        if i < len(view):
            self._ff = view[-1] == 0xFF
        return None, len(view)


class _Zip(StructureScanner):
    format_name = "zip"

    def _parse(self):
        while True:
            self._mark(self._pos)
            if (yield _READ, 4) != b"PK\x03\x04":  # the central directory (or something unknown)
                return
            header = yield _READ, 26
            _, flags, _, _, _, _, csize, usize, name_len, extra_len = struct.unpack("<5H3I2H", header)
            if csize == 0xFFFFFFFF:  # zip64: the real size is in the extra field
                if name_len + extra_len > _MAX_HEADER:
                    return
                tail = yield _READ, name_len + extra_len
                csize = _zip64_csize(tail[name_len:], usize == 0xFFFFFFFF)
                if csize is None:
                    return
            else:
                yield _SKIP, name_len + extra_len
            self._mark(self._pos)
            if flags & 8:  # sizes come after the data, whose end can't be found without inflating it
                return
            yield _SKIP, csize


def _zip64_csize(extra, has_usize):
    """Compressed size from a local header's zip64 extra field (it follows the original size)."""
    i = 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, i)
        if tag == 1:
            field = extra[i + 4 : i + 4 + length]
            start = 8 if has_usize else 0
            return int.from_bytes(field[start : start + 8], "little") if len(field) >= start + 8 else None
        i += 4 + length
    return None


class _Png(StructureScanner):
    format_name = "png"

    def _parse(self):
        yield _SKIP, 8  # signature
        in_idat = False
        while True:
            at = self._pos
            if not in_idat:
                self._mark(at)
            header = yield _READ, 8
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if in_idat and kind != b"IDAT":  # a run of IDATs is one zlib stream: keep it one unit
                self._mark(at)
            if length > 0x7FFFFFFF or not kind.isalpha():
                return
            in_idat = kind == b"IDAT"
            yield _SKIP, length + 4  # data and CRC
            if kind == b"IEND":
                return


class _Bmff(StructureScanner):
    format_name = "isobmff"

    def _parse(self):
        while True:
            at = self._pos
            self._mark(at)
            header = yield _READ, 8
            size, kind = int.from_bytes(header[:4], "big"), header[4:]
            if not _FOURCC.fullmatch(kind):
                return
            if size == 1:
                size = int.from_bytes((yield _READ, 8), "big")
            if size < self._pos - at:  # includes size 0: the box runs to the end of the file
                return
            yield _SKIP, at + size - self._pos


class _Riff(StructureScanner):
    format_name = "riff"

    def _parse(self):
        ends = []  # end offsets (pad included) of the open RIFF form and LIST chunks, innermost last
        while True:
            while ends and ends[-1] - self._pos < 8:  # no room left for a chunk: just a pad byte
                yield _SKIP, ends.pop() - self._pos
            at = self._pos
            self._mark(at)
            if not ends:  # a RIFF form (AVIs over 1 GiB chain several)
                header = yield _READ, 12
                size = int.from_bytes(header[4:8], "little")
                if header[:4] != b"RIFF" or 0 < size < 4:
                    return
                # Streaming writers leave the size 0 or 0xFFFFFFFF: then the form ends with the file.
                ends.append(math.inf if size in (0, 0xFFFFFFFF) else at + 8 + size + (size & 1))
                continue
            header = yield _READ, 8
            ckid, size = header[:4], int.from_bytes(header[4:], "little")
            end = at + 8 + size + (size & 1)
            if not _FOURCC.fullmatch(ckid) or end > ends[-1]:  # overrunning its container: sizes are off
                return
            if ckid == b"LIST" and size >= 4:
                yield _SKIP, 4  # list type; the sub-chunks follow
                ends.append(end)
            else:
                yield _SKIP, end - self._pos


class _Tar(StructureScanner):
    format_name = "tar"

    def _parse(self):
        pax_size = None  # a pax header's size record, which overrides the next member's size field
        while True:
            self._mark(self._pos)
            header = yield _READ, 512
            size = _tar_number(header[124:136])
            if size is None or not _tar_checksum_ok(header):  # includes the zero blocks ending the archive
                return
            kind = header[156:157]
            if kind in (b"x", b"g", b"L", b"K"):  # pax and GNU long-name headers describe the next member
                if kind == b"x" and size <= _MAX_HEADER:
                    pax_size = _pax_size((yield _READ, size))
                    yield _SKIP, -size % 512
                else:
                    yield _SKIP, _tar_blocks(size)
                continue
            if kind == b"S":  # old GNU sparse: extension headers may sit between header and data
                return
            if pax_size is not None:
                size, pax_size = pax_size, None
            if kind in (b"1", b"2", b"3", b"4", b"5", b"6"):  # links, devices, dirs, fifos carry no data
                size = 0
            self._mark(self._pos)
            yield _SKIP, _tar_blocks(size)


def _tar_blocks(size):
    return -(-size // 512) * 512


def _tar_number(field):
    """A tar numeric field (octal text, or GNU base-256), or None if malformed or negative."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if digits.strip(b"01234567"):
        return None
    return int(digits or b"0", 8)


def _tar_checksum_ok(header):
    stored = _tar_number(header[148:156])
    rest = header[:148] + header[156:]
    unsigned = sum(rest) + 8 * 0x20  # the checksum field counts as spaces
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    return stored in (unsigned, unsigned - 256 * high)  # some old tars summed signed chars


def _pax_size(records):
    """The size record of a pax extended header ("<len> size=<n>\\n"), or None."""
    size, i = None, 0
    while i < len(records):
        space = records.find(b" ", i)
        length = records[i:space]
        if space < 0 or not length.isdigit() or int(length) <= space - i:
            return None
        end = i + int(length)
        key, _, value = records[space + 1 : end].partition(b"=")
        if key == b"size":
            value = value.rstrip(b"\n")
            size = int(value) if value.isdigit() else None
        i = end
    return size


class _Jpeg(StructureScanner):
    format_name = "jpeg"

    def _parse(self):
        yield _SKIP, 2  # SOI
        code = None  # a marker code already consumed by an entropy-data scan
        while True:
            if code is None:  # outside entropy-coded data a marker must come next
                self._mark(self._pos)
                head = yield _READ, 2
                if head[0] != 0xFF:
                    return
                code = head[1]
                while code == 0xFF:  # fill bytes may precede a marker
                    code = (yield _READ, 1)[0]
            elif code != 0xD9:
                # EOI is not marked: a 2-byte chunk that every JPEG shares would dedup across
                # files and so split whole-file segments, which JPEG codecs need.
                self._mark(self._pos - 2)
            if code in (0x00, 0xD8, 0xD9):  # EOI ends the image; no marker or a nested image: lost
                return
            if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length field
                code = None
                continue
            length = int.from_bytes((yield _READ, 2), "big")
            if length < 2:
                return
            yield _SKIP, length - 2
            if code == 0xDA:  # SOS: entropy-coded data runs up to the next marker
                self._mark(self._pos)
                code = yield _SCAN, 0
            else:
                code = None


def scanner_for(head: bytes) -> StructureScanner | None:
    """A fresh scanner for the format the file's first bytes reveal, or None if none is known."""
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"PK\x03\x04"):
        return _Zip()
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _Png()
    if head.startswith(b"\xff\xd8\xff"):
        return _Jpeg()
    if head.startswith(b"RIFF") and len(head) >= 12:
        return _Riff()
    # Before ISO-BMFF: a tar member name may well hold "free" or "skip" at offset 4.
    if len(head) >= 512 and _tar_checksum_ok(head[:512]):
        return _Tar()
    if head[4:8] in _BMFF_FIRST_BOXES:
        return _Bmff()
    return None


def boundaries(data: bytes) -> list[int]:
    """All structural boundaries of a complete in-memory file."""
    scanner = scanner_for(data[:SNIFF_BYTES])
    return scanner.feed(data) if scanner else []
