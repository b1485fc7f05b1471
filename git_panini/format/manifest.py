"""The manifest: a blob listing a file's chunks in order, one '<oid> <size>' a line.

A parsed manifest (Manifest) keeps each distinct chunk once and the file as runs of repeats of them, so
what it holds in memory, and what a reader who asks for its distinct chunks does, grows with the chunks
that differ, not with the file's size: a 3 GiB file of zeros is one 64 KiB chunk 49,152 times over,
one distinct chunk and one run. Only reading the file's bytes back (smudge, verify) walks every line.
"""

from __future__ import annotations

import re
from array import array

MAX_CHUNK_SIZE = 16 << 20  # far above any chunker setting: a larger claim is hostile
# ~5 M chunks: files of hundreds of GiB. A larger blob named as a manifest is refused unread.
MAX_MANIFEST_SIZE = 256 << 20
_LINE = re.compile(rb"([0-9a-f]+) ([0-9]{1,10})")
_BLOCK = 1 << 20   # bytes of lines split at once
_ONE_LINE = 128    # longer than any one line (a 64-hex id, a space, ten digits, a newline)


class ManifestError(ValueError):
    pass


class TooLarge(ManifestError):
    """The manifest's sizes add up to more than the reader allows (parse's max_size)."""


class Manifest:
    """A file's chunks: `chunks` (distinct ids, in order of first appearance) with their `sizes` and
    `counts` (times each appears), and the file's order as runs (chunk, size, repeats). Iterating yields
    every (chunk, size) in file order, a repeated chunk as often as the file holds it."""

    __slots__ = ("chunks", "sizes", "counts", "_run_chunk", "_run_length", "size", "lines")

    def __init__(self):
        self.chunks: list[str] = []
        self.sizes = array("Q")
        self.counts = array("Q")
        self._run_chunk = array("I")     # index into chunks
        self._run_length = array("I")
        self.size = 0                    # the file's bytes: every line's size, repeats included
        self.lines = 0

    def __len__(self) -> int:
        return self.lines

    def __bool__(self) -> bool:
        return self.lines > 0

    def __iter__(self):
        chunks, sizes = self.chunks, self.sizes
        for i, n in zip(self._run_chunk, self._run_length):
            pair = (chunks[i], sizes[i])
            for _ in range(n):
                yield pair

    def runs(self):
        """(chunk, size, repeats) in file order: a chunk repeated n times in a row is one run."""
        for i, n in zip(self._run_chunk, self._run_length):
            yield self.chunks[i], self.sizes[i], n

    def distinct(self) -> list[tuple[str, int]]:
        """Each chunk once, (chunk, size), in order of first appearance."""
        return list(zip(self.chunks, self.sizes))

    def counted(self):
        """(chunk, size, times the file holds it), each chunk once."""
        return zip(self.chunks, self.sizes, self.counts)

    @property
    def distinct_bytes(self) -> int:
        return sum(self.sizes)


def encode(chunks) -> bytes:
    return "".join(f"{oid} {size}\n" for oid, size in chunks).encode()


def parse(data: bytes, hex_len: int, max_size: int | None = None) -> Manifest:
    """Parse a manifest blob. max_size: the most bytes its file may have (a pointer's size, a configured
    cap); a manifest whose sizes add up to more is refused as soon as the running total passes it.
    Lines are split a block at a time (bounded memory); a line repeating the one before is not parsed again."""
    if data and not data.endswith(b"\n"):
        raise ManifestError("manifest is truncated")
    m = Manifest()
    if data.count(b"\n", 0, _ONE_LINE) == 1 and len(data) < _ONE_LINE:   # a small file's: one chunk, no loop
        match = _LINE.fullmatch(data, 0, len(data) - 1)
        if match is not None and len(match[1]) == hex_len and 0 < int(match[2]) <= MAX_CHUNK_SIZE:
            size = int(match[2])
            if max_size is not None and size > max_size:
                raise TooLarge(f"manifest describes more than {max_size} bytes (by line 1)")
            m.chunks.append(match[1].decode("ascii"))
            m.sizes.append(size)
            m.counts.append(1)
            m._run_chunk.append(0)
            m._run_length.append(1)
            m.lines, m.size = 1, size
            return m
    by_oid: dict[bytes, int] = {}      # chunk id -> its index in m.chunks
    chunks, sizes, counts, run_chunk, run_length = m.chunks, m.sizes, m.counts, m._run_chunk, m._run_length
    fullmatch = _LINE.fullmatch
    lines, total, previous, i, start, size = 0, 0, None, -1, 0, 0
    while start < len(data):
        end = data.find(b"\n", min(start + _BLOCK, len(data)) - 1) + 1
        for line in data[start:end - 1].split(b"\n"):
            lines += 1
            if line == previous:
                run_length[-1] += 1
                counts[i] += 1
                total += size
                continue
            previous = line
            match = fullmatch(line)
            if match is None or len(match[1]) != hex_len:
                raise ManifestError(f"manifest line {lines} is malformed")
            size = int(match[2])
            if not 0 < size <= MAX_CHUNK_SIZE:
                raise ManifestError(f"manifest line {lines} claims an impossible chunk size {size}")
            at = by_oid.get(match[1])
            if at is None:
                at = by_oid[match[1]] = len(chunks)
                chunks.append(match[1].decode("ascii"))
                sizes.append(size)
                counts.append(0)
            elif sizes[at] != size:
                raise ManifestError(f"manifest line {lines} gives chunk {chunks[at]} the size {size}, an "
                                    f"earlier line {sizes[at]}")
            if at != i:
                run_chunk.append(at)
                run_length.append(1)
                i = at
            else:
                run_length[-1] += 1
            counts[i] += 1
            total += size
        start = end
        if max_size is not None and total > max_size:
            raise TooLarge(f"manifest describes more than {max_size} bytes (by line {lines})")
    m.lines, m.size = lines, total
    return m

