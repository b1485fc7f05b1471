"""Which superseded packs a worker retires from a remote, and how their data leaves it.

A lineage packed version by version leaves packs that later ones supersede: the repacked segments of hot
commits (work/repack.py) hold the same chunks again. A pack is retired, in the same compare-and-swap push
that records what replaces it (transfer.sync.push's `decide`), only when, once it and the others going with
it are gone:

- every chunk it yields is yielded by a pack that stays: listed in the store, decoded and re-hashed by this
  side (a recipe alone proves nothing: DESIGN.md §4), whose data, dictionaries and base a proven pack data
  ref holds (or this very push carries);
- no pack that stays has it as base;
- every hot commit keeps the read bound without it: readers choose among the packs that stay
  (store/read_cost.choose_packs), and what a checkout decodes for nothing stays under the share at which the
  worker packs again (work/lifetime_groups.REPACK_AT), so a retirement never calls for a repack.

Decided pack by pack, largest first; the packs a decision leaned on are pinned, never retired after it. Its
recipe leaves the store. Its data leaves the remote with the pack data ref refs/panini/packs/<c> that holds
it: a ref holds one worker push's packs, so the ref is deleted and, unless every blob in it goes, replaced
by the content-addressed ref of the blobs that stay (store/bulk.py): no blob a pack that stays needs, nor
one no listed pack names, ever leaves. A ref the remote does not prove holding anything is never touched,
nor are refs this push creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..git.tree_edit import TreeEditor
from ..store import history
from ..store.chunk_index import ChunkIndex
from ..store.read_cost import pack_use, waste
from ..store.shared import PACK_REFS, bulk_list_path, pack_path
from .lifetime_groups import REPACK_AT


@dataclass
class Retirement:
    packs: set[str] = field(default_factory=set)            # retired: their recipes leave the store
    refs: dict[str, str] = field(default_factory=dict)      # {pack data ref: its commit} deleted ...
    kept: dict[str, list[str]] = field(default_factory=dict)   # ... {ref: the blobs of it that stay}, if any

    @property
    def paths(self) -> list[str]:
        """The store entries that go: the packs' recipes and the deleted refs' lists."""
        return sorted(pack_path(p) for p in self.packs) + sorted(bulk_list_path(c) for c in self.refs.values())


@dataclass
class HotRead:
    """One hot commit's checkout: its files, the bytes it writes, the packs it reads ({pack: bytes needed})."""
    files: list
    written: int
    use: dict[str, int]


def hot_reads(repo, index: ChunkIndex) -> list[HotRead]:
    files = history.Files(repo)
    out = []
    for commit in history.hot_commits(repo):
        manifests = [m for _, m in files.of(commit)[0]]
        out.append(HotRead(manifests, sum(m.size for m in manifests), pack_use(index, manifests)))
    return out


def plan(index: ChunkIndex, remote: str, store_tree: str | None, hot: list[HotRead], good,
         new: dict[str, list[str]] | None = None, new_packs=frozenset()) -> Retirement:
    """What to retire from `remote`, whose store tree (as fetched, before this push) is `store_tree`.
    good(pack): this side decoded the pack and re-hashed every chunk it claims. new: {ref: blobs} of the
    pack data refs this push creates, holding `new_packs`."""
    listing = TreeEditor(index.repo, store_tree) if store_tree else None
    new = new or {}
    listed_cache: dict[str, bool] = {}

    def listed(pack: str) -> bool:
        if pack not in listed_cache:
            listed_cache[pack] = pack in new_packs or (listing is not None and listing.get(pack_path(pack)) is not None)
        return listed_cache[pack]

    refs = {ref: commit for ref, commit in index.remote_bulk_refs(remote).items() if ref.startswith(PACK_REFS)}
    blobs = {ref: set(index.proven_blobs(remote, ref)) for ref in refs} | {ref: set(b) for ref, b in new.items()}
    held = set().union(*blobs.values()) if blobs else set()
    users: dict[str, set[str]] = {}   # blob -> the listed packs that need it as their own
    for ref, found in blobs.items():
        for pack in index.packs_using(found):
            if listed(pack):
                for blob in index.own_blobs(pack):
                    users.setdefault(blob, set()).add(pack)
    candidates = sorted({p for ref in refs if ref not in new for b in blobs[ref] for p in users.get(b, ())
                         if p not in new_packs}, key=lambda p: (-index.pack_size(p)[1], p))
    gone: set[str] = set()
    pinned: set[str] = set()
    uses = [read.use for read in hot]

    def stays(pack: str) -> bool:
        """Listed, not going, its base too, every blob it needs held (a ref's blobs that stay stay held)."""
        base = index.pack_base(pack)
        return (listed(pack) and pack not in gone and (base is None or (listed(base) and base not in gone))
                and all(b in held for b in index.pack_blobs(pack)))

    for pack in candidates:
        if pack in pinned or any(listed(d) and d not in gone for d in index.deltas_of(pack)):
            continue
        gone.add(pack)
        reads = _reads_without(index, hot, uses, gone)
        covers = _covers(index, pack, lambda q: stays(q) and good(q)) if reads is not None else None
        if covers is None:
            gone.discard(pack)
            continue
        uses = reads
        pinned |= covers | {b for q in covers if (b := index.pack_base(q))}
    out = Retirement(packs=gone)
    for ref, commit in refs.items():
        if ref in new:
            continue
        leaving = {b for b in blobs[ref] if users.get(b) and users[b] <= gone}
        if leaving:
            out.refs[ref] = commit
            if blobs[ref] - leaving:
                out.kept[ref] = sorted(blobs[ref] - leaving)
    return out


def _reads_without(index: ChunkIndex, hot: list[HotRead], uses: list[dict[str, int]],
                   gone: set[str]) -> list[dict[str, int]] | None:
    """Each hot commit's packs once `gone` are gone (those that read none of them: as they were), or None
    when one would then decode more for nothing than the share at which the worker repacks."""
    out = []
    for read, use in zip(hot, uses):
        if gone.isdisjoint(use):
            out.append(use)
            continue
        use = pack_use(index, read.files, gone)
        if waste(index, use) > REPACK_AT * read.written:
            return None
        out.append(use)
    return out


def _covers(index: ChunkIndex, pack: str, usable) -> set[str] | None:
    """Other packs, usable(pack), that together yield every chunk this one yields; None if a chunk has none.
    Packs already taken are preferred, so the decision leans on as few as it can."""
    taken: set[str] = set()
    verdict: dict[str, bool] = {}
    for chunk, _ in index.pack_chunks(pack):
        others = sorted({p for p, _, _, _ in index.locate(chunk) if p != pack},
                        key=lambda p: (p not in taken, not index.is_verified(p), p))
        for other in others:
            if other not in verdict:
                verdict[other] = usable(other)
            if verdict[other]:
                taken.add(other)
                break
        else:
            return None
    return taken
