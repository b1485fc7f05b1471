"""`git panini prune`: drop local data that nothing references any more (never what a remote lacks),
and the read cache.

Referenced means reachable from a branch, tag, stash or other ref, from a reflog entry (until
`git reflog expire` ends it), or staged in the index. Unpushed commits are on branches, so their
data is kept; data that was cleaned but never committed (a file added, then reset) is dropped.
Dropping removes the entries from refs/panini/local; `git gc` then frees the bytes.

The read cache (refs/panini/cache) is a copy of what the store holds, so it goes whole (cache_only: it
alone, without the walk of history): a chunk it shares with refs/panini/local stays, kept by that ref.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..format import pointer_scan as pointers
from ..format.manifest import ManifestError
from ..store import manifests as manifest_store
from ..store.local import LocalStore
from ..store.read_cache import ReadCache


@dataclass
class PruneResult:
    manifests: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0
    cache_chunks: int = 0
    cache_bytes: int = 0


def referenced_manifests(repo) -> set[str]:
    revs = ["--exclude=refs/panini/*", "--exclude=refs/notes/*", "--all", "--reflog", "--indexed-objects"]
    return {f.pointer.manifest for f in pointers.in_revs(repo, revs) if f.pointer}


def _chunks(repo, manifest: str) -> list[tuple[str, int]]:
    """The manifest's distinct (chunk, size); [] when it is absent or unreadable."""
    try:
        m = manifest_store.load(repo, manifest)
    except ManifestError:
        return []
    return m.distinct() if m is not None else []


def prune(repo, dry_run: bool = False, cache_only: bool = False) -> PruneResult:
    cache = ReadCache(repo)
    held = cache.usage() if dry_run else cache.clear()
    if cache_only:
        return PruneResult(cache_chunks=held[0], cache_bytes=held[1])
    local = LocalStore(repo)
    manifests = local.manifests()
    referenced = referenced_manifests(repo)
    keep = [m for m in manifests if m in referenced]
    drop = [m for m in manifests if m not in referenced]
    needed = {c for m in keep for c, _ in _chunks(repo, m)}
    sizes = {c: s for m in drop for c, s in _chunks(repo, m)}
    result = PruneResult(drop, sorted(c for c in local.chunks() if c not in needed), kept=len(keep),
                         cache_chunks=held[0], cache_bytes=held[1])
    result.bytes = sum(sizes.get(c, 0) for c in result.chunks)
    if not dry_run and (result.manifests or result.chunks):
        local.drop(result.manifests, result.chunks, f"panini: prune {len(drop)} unreferenced file(s)")
    return result
