"""Regroups a batch's planned segments by lifetime, so that a checkout of a hot commit decodes about what it
writes (the read bound, store/read_cost.py).

A segment is decoded whole, so every chunk in it that a checkout does not need is waste. Chunks that the
same hot commits check out (the same lifetime: store.history.lifetimes) go together, so a commit that
needs one of them needs all. Groups too small to compress well are then merged, most alike lifetimes
first, only while every hot commit's waste stays within its share of the bound. Chunks no hot commit
needs (cold history) keep the segments planned for them: there the strongest grouping wins.
"""

from __future__ import annotations

from ..format.segment import SEGMENT_MAX, SEGMENT_TARGET, WHOLE_FILE_FORMATS, Segment
from ..store.history import Lifetimes
from ..store.read_cost import MAX_DECODE

# Waste (bytes decoded for nothing) as a share of the bytes a hot commit writes. Merges stop at MERGE_SHARE;
# packs are packed again past REPACK_AT (work/repack.py). The margins are there because readers choose
# packs greedily (store/read_cost.choose_packs), so a commit may read a little more than planned: measured,
# up to 0.06 more.
MERGE_SHARE = MAX_DECODE - 1 - 0.15
REPACK_AT = MAX_DECODE - 1 - 0.05
SMALL_GROUP = SEGMENT_TARGET // 4    # groups below this are worth merging


def group_by_lifetime(segments: list[Segment], hot: Lifetimes, waste: dict[int, int],
                      plan_deltas=None, keep_whole: bool = False) -> tuple[list[Segment], dict]:
    """The same chunks as `segments`, regrouped (see the module's doc). `waste` {hot commit: bytes its
    checkout decodes and does not need}, which this adds to (the packs of earlier batches count).
    Returns (segments, plan_deltas' answer or {}).
    plan_deltas(groups) -> {id(group): base}: called on the groups before small ones merge, since a
    delta stores a version's edit for less of the budget than a merge does; deltas and their bases
    are not merged. keep_whole: whole-file segments (JPEG, PNG, ZIP) stay whole, for the codecs that
    need the whole file (the archive profile); hot data gets none of those codecs otherwise, so they split."""
    lives = hot.lives
    groups: dict[frozenset, Segment] = {}
    kept: list[Segment] = []
    for segment in segments:
        if segment.format in WHOLE_FILE_FORMATS and (keep_whole or not any(lives.get(c) for c, _ in segment.chunks)):
            segment.hot = any(lives.get(chunk) for chunk, _ in segment.chunks)
            kept.append(segment)
            _charge(waste, segment, lives)
            continue
        cold = Segment(format=segment.format)
        for chunk, size in segment.chunks:
            life = lives.get(chunk)
            if not life:
                cold.chunks.append((chunk, size))
                continue
            group = groups.get(life)
            if group is None:
                group = groups[life] = Segment(format=segment.format if segment.format in (None, "elf") else None,
                                               hot=True)
            elif group.format != segment.format:
                group.format = None
            group.chunks.append((chunk, size))
        if cold.chunks:
            kept.append(cold)
    bases = plan_deltas(list(groups.values())) if plan_deltas is not None else {}
    fixed = set(bases) | {id(b.segment) for b in bases.values() if b.segment is not None}
    return kept + _merge_small(groups, hot, waste, fixed), bases


def _charge(waste: dict[int, int], segment: Segment, lives: dict[str, frozenset]):
    """A segment kept whole costs each hot commit that needs part of it the rest of it."""
    needed: dict[int, int] = {}
    for chunk, size in segment.chunks:
        for i in lives.get(chunk, ()):
            needed[i] = needed.get(i, 0) + size
    for i, n in needed.items():
        waste[i] += segment.size - n


def _split(group: Segment) -> list[Segment]:
    """A group over SEGMENT_MAX in pieces of about SEGMENT_TARGET (the worker's memory bound): every commit
    that needs one piece needs them all, so this costs no waste."""
    if group.size <= SEGMENT_MAX:
        return [group]
    pieces, current = [], Segment(format=group.format, hot=True)
    for chunk, size in group.chunks:
        if current.chunks and current.size + size > SEGMENT_TARGET:
            pieces.append(current)
            current = Segment(format=group.format if group.format == "elf" else None, hot=True)
        current.chunks.append((chunk, size))
    return pieces + [current]


def _merge_small(groups: dict[frozenset, Segment], hot: Lifetimes, waste: dict[int, int],
                 fixed: set[int] = frozenset()) -> list[Segment]:
    """fixed: ids of groups kept as they are (deltas and their bases)."""
    written = hot.written
    out = [g for g in groups.values() if id(g) in fixed]
    groups = {life: g for life, g in groups.items() if id(g) not in fixed}
    out += [piece for g in groups.values() if g.size >= SMALL_GROUP for piece in _split(g)]
    # Visited file by file and place by place, so that the versions of one region of a file land in one
    # segment while the budget allows: the codec then stores a version's edit, not its whole chunk again.
    small = sorted(((life, g) for life, g in groups.items() if g.size < SMALL_GROUP),
                   key=lambda item: (item[1].format or "", hot.where[item[1].chunks[0][0]], min(item[0])))
    current: Segment | None = None
    needs: dict[int, int] = {}      # hot commit -> bytes of `current` it needs
    for life, group in small:
        size = group.size
        if current is not None and current.size < SEGMENT_TARGET and group.format == current.format:
            # Commits that need `current` but not this group decode it for nothing, and the other way round.
            extra = {i: size for i in needs if i not in life}
            extra.update({i: current.size for i in life if i not in needs})
            if all(waste[i] + n <= MERGE_SHARE * written[i] for i, n in extra.items()):
                for i, n in extra.items():
                    waste[i] += n
                for i in life:
                    needs[i] = needs.get(i, 0) + size
                current.chunks += group.chunks
                continue
        if current is not None:
            out.append(current)
        current = Segment(list(group.chunks), group.format, hot=True)
        needs = {i: size for i in life}
    if current is not None:
        out.append(current)
    return out
