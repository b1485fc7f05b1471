"""Turns file bytes into chunks, a manifest and a pointer; one session ends in one local-store commit."""

from __future__ import annotations

from . import manifest as manifest_mod
from .chunking import Chunker
from .hashing import BackgroundSha256
from .journal import Journal
from .local import LocalStore
from .objects import object_id
from .pack import PackWriter
from .pointer import Pointer
from .store import Store

FEED_BYTES = 4 << 20  # the chunker rescans its tail on every feed, so feed it big blocks


class IngestSession:
    """Used by the clean filter and `git panini add`: new chunks go into packfiles, and finish()
    records every manifest and chunk of the session in one commit of the local store (never pushed
    as such: a push publishes only what pushed commits reference)."""

    def __init__(self, repo):
        self.repo = repo
        self.params = Store(repo).params()
        self.packs = PackWriter(repo.objects_dir, repo.algo)
        self._manifests: list[str] = []
        self._chunks: set[str] = set()
        self.journal = Journal(repo)

    def clean(self, blocks, path: str = "") -> bytes:
        """Consume an iterable of byte blocks (a file's content) and return its pointer text."""
        chunker = Chunker(self.params)
        digest = BackgroundSha256()
        entries: list[tuple[str, int]] = []
        pending = bytearray()
        for block in blocks:
            pending += block
            if len(pending) >= FEED_BYTES:
                digest.update(pending)
                self._take(chunker.feed(pending), entries)
                pending = bytearray()
        digest.update(pending)
        self._take(chunker.feed(pending) + chunker.finish(), entries)
        size = sum(s for _, s in entries)
        if size == 0:
            return b""  # an empty file stays empty
        manifest_oid = self.packs.add("blob", manifest_mod.encode(entries))
        self._manifests.append(manifest_oid)
        self.journal.add(path, manifest_oid)
        return Pointer(manifest_oid, digest.hexdigest(), size).encode()

    def _take(self, chunks, entries):
        for data in chunks:
            oid = object_id("blob", data, self.repo.algo)
            entries.append((oid, len(data)))
            if oid in self._chunks:
                continue
            self._chunks.add(oid)
            # Dedup only against a raw blob that is here (its id is its content's hash): never
            # against a pack some store merely claims holds the chunk.
            if oid not in self.packs and not self.repo.exists(oid):
                self.packs.add("blob", data, oid)

    def finish(self) -> str | None:
        """Make the session durable: flush packs, then one local-store commit that keeps every
        manifest and chunk of the session reachable (safe from `git gc`)."""
        self.packs.flush()
        tip = None
        if self._manifests:
            tip = LocalStore(self.repo).record(self._manifests, sorted(self._chunks),
                                               f"panini: add {len(self._manifests)} file(s)")
        self._manifests, self._chunks = [], set()
        self.journal.close()
        return tip
