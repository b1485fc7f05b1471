"""Groups a file's not-yet-packed chunks into segments: runs of consecutive chunks that codecs see together,
each chunk once."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import structure as formats
from .manifest import Manifest

SEGMENT_TARGET = 4 << 20      # past this, cut at the next structural boundary
SEGMENT_MAX = 16 << 20        # cut here whatever the structure says (bounds worker memory)
WHOLE_FILE_MAX = 32 << 20     # formats whose codecs need the whole file (JPEG, PNG, ZIP) up to this size
WHOLE_FILE_FORMATS = {"jpeg", "png", "zip"}
MIN_CHUNK = 4 << 10           # the smallest chunk a chunker config allows (store.shared's config check)


@dataclass
class Segment:
    chunks: list[tuple[str, int]] = field(default_factory=list)
    format: str | None = None      # the file's format, when this segment starts at a structural unit
    hot: bool = False              # a hot commit needs it: checkouts wait on its decode (work/lifetime_groups)
    base: str | None = None        # a pack to encode it as a delta against (work/deltas)

    @property
    def size(self) -> int:
        return sum(s for _, s in self.chunks)


def sniff_format(head: bytes) -> str | None:
    """The file's format from its first bytes: a structure scanner's name, or 'elf' for x86 code."""
    scanner = formats.scanner_for(head[: formats.SNIFF_BYTES])
    if scanner:
        return scanner.format_name
    if head[:4] == b"\x7fELF" and len(head) >= 20 and int.from_bytes(head[18:20], "little") in (3, 62):
        return "elf"
    return None


def plan_segments(chunks: Manifest, is_packed, read_chunk) -> list[Segment]:
    """Split the unpacked chunks of one file into segments.

    is_packed(oid) says a chunk is already in some pack (it is never packed twice);
    read_chunk(oid, size) gives chunk bytes, used only to find the file's structure.
    A segment holds each chunk once: a chunk the file repeats goes where it first appears, and its
    repeats neither cut a segment nor cost anything, so the work grows with the file's distinct chunks
    (a 3 GiB file of zeros is one segment of one chunk). Only a whole-file segment (whole_file_chunks)
    holds the file as it is, repeats included, within WHOLE_FILE_MAX.
    """
    if not chunks:
        return []
    head = read_chunk(chunks.chunks[0], chunks.sizes[0])
    scanner = formats.scanner_for(head[: formats.SNIFF_BYTES])
    fmt = sniff_format(head)
    todo = {c for c in chunks.chunks if not is_packed(c)}
    if fmt in WHOLE_FILE_FORMATS and whole_file_chunks(chunks) and len(todo) == len(chunks.chunks):
        return [Segment(list(chunks), fmt)]
    boundaries = set()
    if scanner is not None:
        # Structure cuts are also chunk cuts, so a segment ending at one holds whole members. The scan
        # reads at most the bytes of the file's distinct chunks: a file repeating a chunk is not read
        # through to its end (the rest of a 3 GiB file of zeros has no structure to find anyway).
        budget = chunks.distinct_bytes
        for c, s in chunks:
            if budget <= 0:
                break
            boundaries.update(scanner.feed(read_chunk(c, s)))
            budget -= s
    segments, current, current_size, offset, placed = [], Segment(format=fmt), 0, 0, set()
    for oid, size, repeats in chunks.runs():
        if oid in placed:   # a repeat: the chunk is in a segment already
            offset += size * repeats
            continue
        wanted = oid in todo
        at_boundary = offset in boundaries
        if current.chunks and (not wanted or current_size >= SEGMENT_MAX
                               or (current_size >= SEGMENT_TARGET and (at_boundary or not boundaries))):
            segments.append(current)
            # Machine code is machine code anywhere; other formats only from a unit's start.
            current, current_size = Segment(format=fmt if at_boundary or fmt == "elf" else None), 0
        if wanted:
            current.chunks.append((oid, size))
            current_size += size
            placed.add(oid)
        elif not current.chunks and fmt != "elf":
            current.format = None
        offset += size * repeats
    if current.chunks:
        segments.append(current)
    return segments


def whole_file_chunks(chunks: Manifest) -> bool:
    """The file is small enough to be one segment as it is, repeats included: a whole-file codec (JPEG,
    PNG, ZIP) then sees every byte. Within WHOLE_FILE_MAX, and within the lines an honest chunker
    (chunks of 4 KiB at least) gives such a file."""
    return chunks.size <= WHOLE_FILE_MAX and len(chunks) <= WHOLE_FILE_MAX // MIN_CHUNK


@dataclass
class SmallFile:
    manifest: str
    chunks: list[tuple[str, int]]
    head: bytes                      # the first bytes, to tell text from binary and order by similarity


def group_small_files(files: list[SmallFile], mostly_printable, device: str = "cpu") -> list[Segment]:
    """Solid segments across small files: text with text, binary with binary, similar files adjacent.
    Files in whole-file formats (JPEG, PNG, ZIP) keep a segment of their own so their codecs apply."""
    from .similarity import greedy_order, profiles

    segments, groups = [], {"text": [], "elf": [], "binary": []}
    for f in files:
        fmt = sniff_format(f.head)
        if fmt in WHOLE_FILE_FORMATS:
            segments.append(Segment(list(f.chunks), fmt))
        else:
            groups["elf" if fmt == "elf" else "text" if mostly_printable(f.head) else "binary"].append(f)
    for kind, members in groups.items():
        order = greedy_order(profiles([f.head for f in members]), device) if members else []
        fmt = "elf" if kind == "elf" else None
        current, current_size = Segment(format=fmt), 0
        for i in order:
            if current.chunks and current_size >= SEGMENT_TARGET:
                segments.append(current)
                current, current_size = Segment(format=fmt), 0
            current.chunks.extend(members[i].chunks)
            current_size += sum(s for _, s in members[i].chunks)
        if current.chunks:
            segments.append(current)
    return segments
