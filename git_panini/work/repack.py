"""Which packed chunks a batch packs again, so that hot commits keep the read bound (store/read_cost.py).

A lineage packed version by version, as workers do after each push, leaves segments that later versions
only partly reuse: each version's checkout decodes a little more for nothing. When a hot commit's waste
passes its share of the bound, the packs that waste the most for it are packed again, their hot chunks
grouped by lifetime with the batch (work/lifetime_groups.py); readers then choose the new segments
(choose_packs). The old packs stay: cold commits and other clones may still read them.
"""

from __future__ import annotations

from ..store.chunk_index import ChunkIndex
from ..store.history import Lifetimes
from .lifetime_groups import REPACK_AT

REPACK_TO = 0.2     # a commit over its share is brought down to this much waste, leaving room for merges


def chunks_to_repack(index: ChunkIndex, hot: Lifetimes, uses: dict[int, dict[str, int]],
                     waste: dict[int, int]) -> list[tuple[str, int]]:
    """(chunk, size) to pack again, in file order; `waste` is updated as if they were. `uses` {hot commit:
    {pack: bytes of it the commit needs}}."""
    marked: set[str] = set()
    for i in sorted(uses):   # newest first: the tips matter most
        if waste[i] <= REPACK_AT * hot.written[i]:
            continue
        by_waste = sorted(uses[i], key=lambda pack: uses[i][pack] - index.pack_size(pack)[0])
        for pack in by_waste:
            if waste[i] <= REPACK_TO * hot.written[i]:
                break
            if pack in marked:
                continue
            marked.add(pack)
            size = index.pack_size(pack)[0]
            for j, use in uses.items():   # every hot commit that read it reads the new segments instead
                if pack in use:
                    waste[j] -= size - use[pack]
                    del use[pack]
    # Sizes from the manifests, never from a recipe (one may claim anything of a chunk it names).
    again = {c: hot.sizes[c] for pack in sorted(marked) for c, _ in index.pack_chunks(pack) if c in hot.lives}
    return sorted(again.items(), key=lambda item: hot.where[item[0]])
