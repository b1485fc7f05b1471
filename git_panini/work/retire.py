"""Which of a remote's pack data refs a worker retires, and with them the packs whose data they hold.

A lineage packed version by version leaves packs that later ones supersede: the repacked segments of hot
commits (work/repack.py) hold the same chunks again. A pack data ref refs/panini/packs/<c> goes, in the
same compare-and-swap push that records its replacement (transfer.sync.push's `retire`), with its packs'
recipes and its list in the store, only when, once it is gone:

- every chunk each of its packs yields is yielded by a pack that stays: listed in the store, decoded and
  re-hashed by this side (a recipe alone proves nothing: DESIGN.md §4), whose data, dictionaries and base
  a proven pack data ref that stays holds (or this very push carries);
- no pack that stays has one of its packs as base or needs a blob it holds;
- every hot commit keeps the read bound without them: readers choose among the packs that stay
  (store/read_cost.choose_packs), and what a checkout decodes for nothing stays under the share at which the
  worker packs again (work/lifetime_groups.REPACK_AT), so a retirement never calls for a repack.

Decided ref by ref; the refs holding the packs a decision leaned on are pinned, never retired after it.
A ref the remote does not prove holding anything is never touched, nor are refs this push creates.
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
    refs: dict[str, str] = field(default_factory=dict)   # {pack data ref: its commit} deleted
    packs: set[str] = field(default_factory=set)         # the packs whose data they held, dropped from the store

    @property
    def paths(self) -> list[str]:
        """The store entries that go: the packs' recipes and the refs' lists."""
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
    holders: dict[str, set[str]] = {}
    for ref, held in blobs.items():
        for blob in held:
            holders.setdefault(blob, set()).add(ref)
    packs_of = {ref: [p for p in index.packs_using(held) if listed(p)] for ref, held in blobs.items()}
    size = {ref: sum(index.pack_size(p)[1] for p in packs) for ref, packs in packs_of.items()}
    candidates = sorted((ref for ref, packs in packs_of.items() if ref not in new and packs and blobs[ref]),
                        key=lambda ref: (-size[ref], ref))
    uses = [read.use for read in hot]
    out = Retirement()
    pinned: set[str] = set()

    def stays(pack: str, gone_refs: set[str], gone_packs: set[str]) -> bool:
        """Listed, and readable from what stays: its blobs (its base's too) held by refs that stay."""
        if pack in gone_packs or not listed(pack):
            return False
        base = index.pack_base(pack)
        if base is not None and (base in gone_packs or not listed(base)):
            return False
        return all(holders.get(b, set()) - gone_refs for b in index.pack_blobs(pack))

    for ref in candidates:
        if ref in pinned:
            continue
        gone_refs = set(out.refs) | {ref}
        going = {p for p in index.packs_using(blobs[ref])
                 if listed(p) and not all(holders.get(b, set()) - gone_refs for b in index.pack_blobs(p))}
        gone_packs = out.packs | going
        # Packs that stay but lean on this ref (a blob, or a base among the packs that go): none may.
        touched = set(index.packs_using(blobs[ref])) | {d for p in going for d in index.deltas_of(p)}
        if any(listed(p) and p not in gone_packs and not stays(p, gone_refs, gone_packs) for p in touched):
            continue
        reads = _reads_without(index, hot, uses, gone_packs)
        if reads is None:
            continue
        covers = _covers(index, going, lambda q: stays(q, gone_refs, gone_packs) and good(q))
        if covers is None:
            continue
        uses = reads
        out.refs[ref] = refs[ref]
        out.packs |= going
        for q in covers:
            for b in index.pack_blobs(q):
                pinned |= holders.get(b, set())
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


def _covers(index: ChunkIndex, packs: set[str], usable) -> set[str] | None:
    """Packs outside `packs`, usable(pack), that together yield every chunk these packs yield; None if a
    chunk has none. Packs already taken are preferred, so the decision leans on as few as it can."""
    taken: set[str] = set()
    verdict: dict[str, bool] = {}
    for pack in sorted(packs):
        for chunk, _ in index.pack_chunks(pack):
            others = sorted({p for p, _, _, _ in index.locate(chunk) if p not in packs},
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
