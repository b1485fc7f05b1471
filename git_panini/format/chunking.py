"""Cuts a byte stream into content-defined chunks (FastCDC), also cutting at format structure."""

from __future__ import annotations

from dataclasses import dataclass

from pyfastcdc import FastCDC

from . import structure as formats


@dataclass(frozen=True)
class ChunkParams:
    min_size: int = 16 << 10
    avg_size: int = 64 << 10
    max_size: int = 256 << 10

    def encode(self) -> str:
        return f"chunker fastcdc-2020 min={self.min_size} avg={self.avg_size} max={self.max_size}\n"

    # What a store may ask for: tiny chunks would make millions of objects, huge ones defeat dedup
    # (a remote's config is only adopted inside these bounds).
    LIMITS = (4 << 10, 4 << 20)

    @classmethod
    def parse(cls, line: str) -> "ChunkParams":
        try:
            fields = dict(f.split("=", 1) for f in line.split()[2:])
            params = cls(int(fields["min"]), int(fields["avg"]), int(fields["max"]))
        except (ValueError, KeyError):
            raise ValueError(f"unreadable chunker line {line.strip()[:80]!r}") from None
        low, high = cls.LIMITS
        if not low <= params.min_size < params.avg_size < params.max_size <= high:
            raise ValueError(f"chunk sizes min={params.min_size} avg={params.avg_size} max={params.max_size} "
                             f"are outside {low} <= min < avg < max <= {high}")
        return params


class Chunker:
    """Feed bytes in any block sizes; get back chunk byte strings, identical whatever the blocks were.

    Memory holds at most one block plus one max-size chunk. Structural cuts closer than
    min_size to the previous structural cut are skipped, so tiny members do not make tiny objects.
    """

    def __init__(self, params: ChunkParams = ChunkParams(), structure: bool = True):
        self.params = params
        self._cdc = FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)
        self._buf = bytearray()
        self._base = 0          # file offset of _buf[0], always the last cut
        self._fed = 0
        self._structure = structure
        self._scanner: formats.StructureScanner | None = None
        self._head = bytearray()  # bytes held back until the format can be sniffed
        self._sniffed = not structure
        self._cuts: list[int] = []   # pending structural boundaries (absolute offsets)
        self._last_structural = 0

    def feed(self, data) -> list[bytes]:
        if not self._sniffed:
            self._head += data
            if len(self._head) < formats.SNIFF_BYTES:
                return []
            data, self._head = bytes(self._head), bytearray()
            self._start_scanner(data)
        self._take(data)
        return self._cut(final=False)

    def finish(self) -> list[bytes]:
        if not self._sniffed:
            data, self._head = bytes(self._head), bytearray()
            self._start_scanner(data)
            self._take(data)
        return self._cut(final=True)

    def _start_scanner(self, head: bytes):
        self._sniffed = True
        self._scanner = formats.scanner_for(head[: formats.SNIFF_BYTES])

    def _take(self, data):
        if self._scanner is not None:
            self._cuts.extend(self._scanner.feed(data))
        self._buf += data
        self._fed += len(data)

    def _cut(self, final: bool) -> list[bytes]:
        out: list[bytes] = []
        while True:
            boundary = self._next_boundary()
            if boundary is not None and boundary <= self._fed:
                out.extend(self._cdc_region(boundary - self._base, final=True))
                self._last_structural = self._cuts.pop(0)
                continue
            out.extend(self._cdc_region(len(self._buf), final=final))
            return out

    def _next_boundary(self) -> int | None:
        # Measured from the last structural cut, not the last CDC cut, so the choice depends
        # only on the file's structure and never on how the bytes arrived.
        while self._cuts and self._cuts[0] < self._last_structural + self.params.min_size:
            self._cuts.pop(0)
        return self._cuts[0] if self._cuts else None

    def _cdc_region(self, end: int, final: bool) -> list[bytes]:
        """Chunk _buf[:end]; unless final, keep the last (possibly incomplete) chunk buffered."""
        if end == 0:
            return []
        with memoryview(self._buf) as view:
            pieces = [c.length for c in self._cdc.cut_buf(view[:end])]
            if not final:
                # A last piece shorter than max_size may only have ended with the buffer, and a
                # structural boundary can be reported up to MAX_LAG bytes after its offset.
                if pieces[-1] < self.params.max_size:
                    pieces.pop()
                while pieces and sum(pieces) > end - formats.MAX_LAG:
                    pieces.pop()
            out, pos = [], 0
            for length in pieces:
                out.append(view[pos:pos + length].tobytes())
                pos += length
        taken = pos
        del self._buf[:taken]
        self._base += taken
        return out


def chunk_bytes(data: bytes, params: ChunkParams = ChunkParams(), structure: bool = True) -> list[bytes]:
    chunker = Chunker(params, structure)
    return chunker.feed(data) + chunker.finish()
