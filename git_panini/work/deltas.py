"""Which hot segments are packed as deltas against the previous version of the same places, within the read
bound (store/read_cost.py).

Grouping by lifetime (work/lifetime_groups.py) keeps each version's new chunks apart from the chunks they
replaced, so a version's edit costs its whole chunks again: a segment of SQLite pages that differ by a few
rows is stored as if new. A delta pack's codec (zstd) matches against the decoded bytes of a *base* pack:
the pack holding the chunks this segment's chunks replaced, in the commit before the oldest one that needs
them. Reading it decodes the base too, for nothing, so a segment becomes a delta only while every commit
that needs it stays within its share of the bound. Bases are one level deep: a base is never a delta
itself (segments are decided oldest first, and one that became a delta is no base).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format.manifest import Manifest
from ..format.segment import SEGMENT_MAX, Segment
from ..store.chunk_index import ChunkIndex
from ..store.history import Lifetimes
from .lifetime_groups import MERGE_SHARE

MIN_BASE_SHARE = 0.25   # a base must hold at least this much of the segment's size in replaced chunks ...
MAX_BASE_RATIO = 4      # ... and decode to at most this many times its size


@dataclass
class Base:
    pack: str | None = None           # an existing pack (no base itself) ...
    segment: Segment | None = None    # ... or a keyframe segment of this batch
    size: int = 0                     # the base's decoded bytes: what a reader decodes for nothing


def plan(segments: list[Segment], hot: Lifetimes, waste: dict[int, int], index: ChunkIndex,
         previous, usable) -> dict[int, Base]:
    """{id(segment): its base} for the hot segments worth a delta; `previous(i)` gives {path: manifest}
    of the commit before hot commit i (its first parent), or {}. An existing pack is a base only when
    usable(pack): its data held where the delta goes (proven in the remote's pack refs) and this side
    decoded and re-hashed it, since the delta can be read only while its base can (a base whose data sat
    on a branch that was then deleted would lose every version packed against it). Adds each delta's
    base to `waste`."""
    where_segment = {c: i for i, segment in enumerate(segments) for c, _ in segment.chunks}
    # A delta or a base stays one segment (never split to the worker's memory bound): only those within it.
    oldest = {i: max(max(hot.lives[c]) for c, _ in s.chunks) for i, s in enumerate(segments)
              if s.hot and s.size <= SEGMENT_MAX and all(c in hot.lives for c, _ in s.chunks)}
    bases: dict[int, Base] = {}    # by segment index, here
    for i in sorted(oldest, key=lambda i: -oldest[i]):   # oldest first: a base is decided before its deltas
        segment = segments[i]
        replaced = _replaced(segment, hot, oldest[i], previous(oldest[i]))
        base, covered = _best_base(replaced, index, where_segment, segments, bases, i, usable)
        if base is None or base.size > MAX_BASE_RATIO * segment.size or covered < MIN_BASE_SHARE * segment.size:
            continue
        commits = set().union(*(hot.lives[c] for c, _ in segment.chunks))
        if all(waste[c] + base.size <= MERGE_SHARE * hot.written[c] for c in commits):
            for c in commits:
                waste[c] += base.size
            bases[i] = base
    return {id(segments[i]): base for i, base in bases.items()}


def _replaced(segment: Segment, hot: Lifetimes, oldest: int, before: dict[str, Manifest]) -> dict[str, int]:
    """{chunk: size} of the previous version of the segment's files that its oldest commit no longer has."""
    paths = {hot.where[c][0] for c, _ in segment.chunks}
    out: dict[str, int] = {}
    for path in paths:
        manifest = before.get(path)
        if manifest is not None:
            out.update((c, s) for c, s in manifest.distinct() if oldest not in hot.lives.get(c, ()))
    return out


def _best_base(replaced: dict[str, int], index: ChunkIndex, where_segment: dict[str, int],
               segments: list[Segment], bases: dict[int, Base], me: int, usable) -> tuple[Base | None, int]:
    """The usable pack or keyframe segment holding the most bytes of the replaced chunks, and how many."""
    held: dict[tuple, int] = {}
    for chunk, size in replaced.items():
        j = where_segment.get(chunk)
        if j is not None and j != me and j not in bases and segments[j].size <= SEGMENT_MAX:
            held[("segment", j)] = held.get(("segment", j), 0) + size
            continue
        for pack in {p for p, _, _, length in index.locate(chunk) if length == size}:
            if index.pack_base(pack) is None:
                held[("pack", pack)] = held.get(("pack", pack), 0) + size
    for kind, key in sorted(held, key=lambda k: (-held[k], k)):
        if kind == "segment" or usable(key):
            break
    else:
        return None, 0
    if kind == "segment":
        return Base(segment=segments[key], size=segments[key].size), held[kind, key]
    return Base(pack=key, size=index.pack_size(key)[0]), held[kind, key]

