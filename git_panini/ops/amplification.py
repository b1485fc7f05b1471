"""`git panini fsck --amplification`: what a checkout of each commit of the history decodes and fetches,
against the bound of the format (store/read_cost.py, docs/format.md "Read amplification")."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import history
from ..store.chunk_index import ChunkIndex
from ..store.read_cost import ReadCost, read_cost
from ..store.shared import Store


@dataclass
class CommitCost:
    commit: str
    files: int
    cost: ReadCost
    unreadable: int = 0     # files whose manifest is not here or does not parse: not counted

    def as_dict(self) -> dict:
        c = self.cost
        return {"commit": self.commit, "files": self.files, "unreadable": self.unreadable, "written": c.written,
                "decoded": c.decoded, "fetched": c.fetched, "stored": c.stored, "packs": c.packs,
                "decode_ratio": round(c.decode_ratio, 3), "fetch_ratio": round(c.fetch_ratio, 3),
                "within_bound": c.within_bound}


def check_history(repo, revs: list[str] | None = None) -> list[CommitCost]:
    """One CommitCost per commit of revs (default: every branch, tag and remote-tracking branch)."""
    index = ChunkIndex(Store(repo))
    index.refresh()
    files = history.Files(repo)
    results = []
    try:
        for commit in history.commits(repo, revs):
            readable, unreadable = files.of(commit)
            cost = read_cost(index, [manifest for _, manifest in readable])
            results.append(CommitCost(commit, len(readable) + unreadable, cost, unreadable))
    finally:
        index.close()
    return results
