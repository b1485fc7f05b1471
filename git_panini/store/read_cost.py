"""What reading a set of files costs once their chunks are packed, and the rule of the format that bounds
it (docs/format.md, "Read amplification"): a checkout of one commit decodes at most MAX_DECODE times the
bytes it writes, and fetches at most MAX_FETCH times the stored size of the chunks it needs plus
FETCH_SLACK. Readers and the checker choose packs the same way (choose_packs), so the checker measures
what a checkout does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format.manifest import Manifest
from .chunk_index import ChunkIndex

MAX_DECODE = 1.5
MAX_FETCH = 1.25
FETCH_SLACK = 1 << 20


@dataclass
class ReadCost:
    written: int = 0     # the files' bytes, each file as often as the checkout writes it
    decoded: int = 0     # every chosen pack's whole segment, and each chunk no pack yields (read raw)
    fetched: int = 0     # the chosen packs' encoded data, and the raw chunks
    stored: int = 0      # the needed chunks' share of what stores them
    packs: int = 0

    @property
    def decode_ratio(self) -> float:
        return self.decoded / self.written if self.written else 0.0

    @property
    def fetch_ratio(self) -> float:
        return self.fetched / self.stored if self.stored else 0.0

    @property
    def within_bound(self) -> bool:
        return self.decoded <= MAX_DECODE * self.written and self.fetched <= MAX_FETCH * self.stored + FETCH_SLACK


def choose_packs(index: ChunkIndex, chunks: dict[str, int], avoid=frozenset()) -> dict[str, str]:
    """{chunk: the pack to read it from} for those of these chunks {chunk: size} some pack yields. A pack
    counts for a chunk only when its recipe gives the chunk's size (a recipe claiming more than the chunk
    would win every choice for nothing), and not if it is in `avoid` (packs this reader found bad), nor if a
    remote retired it while another pack yields the chunk (its data is gone there). A chunk in one pack is
    read from it; of several, from a pack already chosen, else from the pack that yields the most needed
    bytes per byte decoded, packs this side decoded and verified first (a segment packed for these files
    beats an old one they share a few chunks of)."""
    chosen: dict[str, str] = {}
    open_choice: dict[str, dict[str, int]] = {}   # chunk -> {pack: length}
    used: set[str] = set()
    retired = index.retired()
    for chunk, size in chunks.items():
        packs = {pack: length for pack, _, _, length in index.locate(chunk) if length == size and pack not in avoid}
        if len(packs) > 1 and retired.intersection(packs) and not set(packs) <= retired:
            packs = {pack: length for pack, length in packs.items() if pack not in retired}
        if len(packs) == 1:
            [chosen[chunk]] = packs
            used.update(packs)
        elif packs:
            open_choice[chunk] = packs
    while open_choice:
        for chunk, packs in list(open_choice.items()):
            hit = min((p for p in packs if p in used), default=None)
            if hit:
                chosen[chunk] = hit
                del open_choice[chunk]
        if not open_choice:
            break
        covers: dict[str, int] = {}
        for packs in open_choice.values():
            for pack, length in packs.items():
                covers[pack] = covers.get(pack, 0) + length
        used.add(max(sorted(covers), key=lambda p: (index.is_verified(p), covers[p] / max(1, _decodes(index, p, used)))))
    return chosen


def _decodes(index: ChunkIndex, pack: str, used: set[str]) -> int:
    """What choosing the pack decodes: its data, and its base's unless that is read anyway (a delta against
    a huge base saves nothing)."""
    base = index.pack_base(pack)
    return index.pack_size(pack)[0] + (index.pack_size(base)[0] if base and base not in used else 0)


def read_cost(index: ChunkIndex, files: list[Manifest]) -> ReadCost:
    """The cost of reading these files (a commit's tracked files) from a clone that has nothing but the
    store's metadata: each chosen pack decoded and fetched once, every other chunk fetched raw."""
    cost = ReadCost(written=sum(m.size for m in files))
    needed: dict[str, int] = {}
    for m in files:
        needed.update(m.distinct())
    chosen = choose_packs(index, needed)
    for pack in with_bases(index, set(chosen.values())):
        decoded, encoded = index.pack_size(pack)
        cost.decoded += decoded
        cost.fetched += encoded
        cost.packs += 1
    for chunk, size in needed.items():
        pack = chosen.get(chunk)
        if pack is None:
            cost.decoded += size
            cost.fetched += size
            cost.stored += size
        else:
            decoded, encoded = index.pack_size(pack)
            base = index.pack_base(pack)
            if base:   # a delta pack's bytes are stored in it and its base: both move to read it
                encoded += index.pack_size(base)[1]
            cost.stored += size * encoded / decoded if decoded else size
    cost.stored = int(round(cost.stored))
    return cost



def pack_use(index: ChunkIndex, files: list[Manifest], avoid=frozenset()) -> dict[str, int]:
    """{pack: bytes of it these files need} for the packs reading them decodes (choose_packs, never one in
    `avoid`)."""
    needed: dict[str, int] = {}
    for m in files:
        needed.update(m.distinct())
    use: dict[str, int] = {}
    for chunk, pack in choose_packs(index, needed, avoid).items():
        use[pack] = use.get(pack, 0) + needed[chunk]
    for pack in with_bases(index, set(use)) - set(use):   # decoded whole for a delta pack, needed for nothing
        use[pack] = 0
    return use


def with_bases(index: ChunkIndex, packs: set[str]) -> set[str]:
    """These packs and the packs they are deltas against (decoded first, whole)."""
    return packs | {base for pack in packs if (base := index.pack_base(pack))}


def waste(index: ChunkIndex, use: dict[str, int]) -> int:
    """What a checkout decodes for nothing, given pack_use's answer for its files."""
    return sum(index.pack_size(pack)[0] - n for pack, n in use.items())
