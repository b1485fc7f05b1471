"""Turns file bytes into chunks, a manifest and a pointer; one session ends in one store commit."""

from __future__ import annotations

from . import manifest as manifest_mod
from .chunking import Chunker
from .hashing import BackgroundSha256
from .journal import Journal
from .notes import Notes, new_note
from .objects import object_id
from .pack import PackWriter
from .pointer import Pointer
from .reader import ChunkSource
from .store import Store

FEED_BYTES = 4 << 20  # the chunker rescans its tail on every feed, so feed it big blocks


class IngestSession:
    """Used by the clean filter and `git panini add`: new chunks go into packfiles, and finish()
    records every manifest and chunk of the session in one store commit plus pending notes."""

    def __init__(self, repo):
        self.repo = repo
        self.store = Store(repo)
        self.params = self.store.params()
        self.packs = PackWriter(repo.objects_dir, repo.algo)
        self.source = ChunkSource(repo)
        self._manifests: list[str] = []
        self._chunks: set[str] = set()
        self._notes: dict[str, dict] = {}
        self.journal = Journal(repo)

    def clean(self, blocks, path: str = "") -> bytes:
        """Consume an iterable of byte blocks (a file's content) and return its pointer text."""
        chunker = Chunker(self.params)
        digest = BackgroundSha256()
        entries: list[tuple[str, int]] = []
        stats = {"unique_chunks": 0, "unique_bytes": 0}
        pending = bytearray()
        for block in blocks:
            pending += block
            if len(pending) >= FEED_BYTES:
                digest.update(pending)
                self._take(chunker.feed(pending), entries, stats)
                pending = bytearray()
        digest.update(pending)
        self._take(chunker.feed(pending) + chunker.finish(), entries, stats)
        size = sum(s for _, s in entries)
        if size == 0:
            return b""  # an empty file stays empty
        manifest_oid = self.packs.add("blob", manifest_mod.encode(entries))
        self._manifests.append(manifest_oid)
        note = self._notes.setdefault(manifest_oid, new_note(size, len(entries), **stats))
        self.journal.add(path, manifest_oid, note)
        return Pointer(manifest_oid, digest.hexdigest(), size).encode()

    def _take(self, chunks, entries, stats):
        for data in chunks:
            oid = object_id("blob", data, self.repo.algo)
            entries.append((oid, len(data)))
            if oid in self._chunks:
                continue
            self._chunks.add(oid)
            if oid not in self.packs and not self.source.has(oid):
                self.packs.add("blob", data, oid)
                stats["unique_chunks"] += 1
                stats["unique_bytes"] += len(data)

    def finish(self) -> str | None:
        """Make the session durable: flush packs, commit the store, add pending notes."""
        self.packs.flush()
        tip = None
        if self._manifests:
            tip = self.store.record(self._manifests, sorted(self._chunks), self.params)
            Notes(self.repo).put(self._notes, f"panini: {len(self._notes)} pending", only_if_absent=True)
        self._manifests, self._chunks, self._notes = [], set(), {}
        self.journal.close()
        return tip

    def close(self):
        self.source.close()
