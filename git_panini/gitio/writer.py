"""Turns file bytes into chunks, a manifest and a pointer; each pointer leaves only once its data is durable."""

from __future__ import annotations

from ..format import manifest as manifest_mod
from ..format.chunking import Chunker
from ..format.hashing import BackgroundSha256
from ..format.pointer import Pointer
from ..git.objects import object_id
from ..git.pack import PackWriter
from ..git.tree_edit import TreeEditor
from ..store.chunk_index import ChunkIndex
from ..store.journal import Journal
from ..store.local import LocalStore
from ..store.shared import Store, fan
from ..util import crash_points

FEED_BYTES = 4 << 20  # the chunker rescans its tail on every feed, so feed it big blocks
WAL_FILE_BYTES = 4 << 20   # a file with at most this many new bytes goes through the WAL, a larger one into its own pack
WAL_BYTES = 4 << 20        # a WAL holding this much goes into a pack and starts again: at most this much extra disk


class IngestSession:
    """Used by the clean filter and `git panini add`.

    Before clean() returns a file's pointer, the file's new chunks and its manifest are on disk
    (fsynced as core.fsync says) where `git gc --prune=now` cannot take them although no ref reaches
    them yet, and the journal names the file: a small file's objects are appended to the session's
    write-ahead log (.git/panini/, outside the object store), a large file's are written as a pack
    with a .keep file. A kill -9 at any moment leaves either no pointer or a pointer whose data is
    on disk and listed for journal.replay(). finish() writes the logged objects into one pack,
    records the whole session in one commit of the local store (never pushed as such: a push
    publishes only what pushed commits reference) and drops the .keep files and the WAL."""

    def __init__(self, repo):
        self.repo = repo
        self.params = Store(repo).params()
        # fsync as Git would: each file's pack before its pointer only if the index that will hold the
        # pointer is fsynced too (core.fsync "index"); else all of them once, before the ref names them.
        self._sync_each = repo.fsync.wants("pack") and repo.fsync.wants("index")
        self._sync_at_end = repo.fsync.wants("pack") and not self._sync_each
        self.packs = PackWriter(repo.objects_dir, repo.algo, keep=True, sync=self._sync_each)
        self._manifests: list[str] = []
        self._chunks: set[str] = set()
        self._kept: TreeEditor | None = None    # refs/panini/local as this session first read it
        self._remote_held: ChunkIndex | None = None   # which chunks remotes hold, opened when first asked
        self.journal = Journal(repo)
        self._logged: list[tuple[str, bytes]] = []   # objects in the WAL and in no pack yet
        self._logged_ids: set[str] = set()
        self._logged_bytes = 0
        self._fresh: list[tuple[str, bytes]] | None = None   # the current file's new objects, while it is small
        self._fresh_bytes = 0

    def clean(self, blocks, path: str = "") -> bytes:
        """Consume an iterable of byte blocks (a file's content) and return its pointer text."""
        if self._logged_bytes >= WAL_BYTES:
            self._checkpoint()
        mark, known = self.packs.mark(), set(self._chunks)
        self._fresh, self._fresh_bytes = [], 0
        try:
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
            manifest = manifest_mod.encode(entries)
            manifest_oid = object_id("blob", manifest, self.repo.algo)
            if manifest_oid not in self.packs and manifest_oid not in self._logged_ids:
                self._store(manifest_oid, manifest)
            if self._fresh is None:   # large: its own kept pack
                self.packs.flush()
            self.journal.log(path, manifest_oid, [data for _, data in self._fresh or ()])
            if self._fresh:
                self._logged += self._fresh
                self._logged_ids.update(oid for oid, _ in self._fresh)
                self._logged_bytes += self._fresh_bytes
        except BaseException:
            # No pointer leaves: what this file wrote is nobody's (on a full disk, it is what fills it).
            self.packs.discard(mark)
            self._chunks = known
            raise
        self._manifests.append(manifest_oid)
        return Pointer(manifest_oid, digest.hexdigest(), size).encode()

    def _take(self, chunks, entries):
        for data in chunks:
            oid = object_id("blob", data, self.repo.algo)
            entries.append((oid, len(data)))
            if oid in self._chunks:
                continue
            self._chunks.add(oid)
            if oid not in self.packs and not self._safe_here(oid):
                self._store(oid, data)

    def _store(self, oid: str, data: bytes):
        """A new object of the current file: held for the WAL while the file is small, else packed."""
        if self._fresh is None:
            self.packs.add("blob", data, oid)
            return
        self._fresh.append((oid, bytes(data)))
        self._fresh_bytes += len(data)
        if self._fresh_bytes > WAL_FILE_BYTES:   # large after all: cheaper as a pack of its own
            for held_oid, held in self._fresh:
                self.packs.add("blob", held, held_oid)
            self._fresh = None

    def _pack_logged(self):
        """The WAL's objects into a flushed pack (kept, like the large files' packs)."""
        if not self._logged:
            return
        mark = self.packs.mark()
        try:
            for oid, data in self._logged:
                self.packs.add("blob", data, oid)
            self.packs.flush()
        except BaseException:
            self.packs.discard(mark)   # the WAL still holds them: try again later
            raise
        self._logged, self._logged_ids, self._logged_bytes = [], set(), 0

    def _checkpoint(self):
        self._pack_logged()
        self.journal.checkpoint()

    def make_readable(self) -> bool:
        """Put what only the WAL holds into a pack, so this process can read it back (a smudge in
        the same git command as the clean); False when there was nothing to put."""
        if not self._logged:
            return False
        self._checkpoint()
        return True

    def _safe_here(self, oid: str) -> bool:
        """Dedup against a raw blob that is here and that refs/panini/local keeps, that a remote is proven to
        hold, or that a remote served this clone by id (a checkout fetched it: a clone re-cleaning a checked-out
        file must not write its whole data again; a push still proves what the remote holds before it skips
        anything). One merely on disk and nowhere else (garbage a worker's pack replaced) may be gone at the
        next gc, so it is written again."""
        if not self.repo.exists(oid):
            return False
        if self._kept is None:
            local = LocalStore(self.repo)
            self._kept = TreeEditor(self.repo, local.tree_of(local.tip()))
        if self._kept.get("chunks/" + fan(oid)) is not None:
            return True
        if self._remote_held is None:
            self._remote_held = ChunkIndex(Store(self.repo))
        return self._remote_held.was_fetched(oid) or self._remote_held.on_some_remote(oid)

    def finish(self) -> str | None:
        """One local-store commit that keeps every manifest and chunk of the session reachable (safe
        from `git gc`); then the .keep files, the WAL and the journal have done their work."""
        crash_points.reached("session-end")   # its pointers are out; small files' objects only in the WAL
        self._pack_logged()
        self.packs.flush()
        if self._sync_at_end:
            self.packs.sync_written()
        tip = None
        if self._manifests:
            # Only raw blobs that are here: a chunk a worker packed meanwhile is kept by its pack.
            chunks = [c for c in sorted(self._chunks) if self.repo.exists(c)]
            tip = LocalStore(self.repo).record(self._manifests, chunks,
                                               f"panini: add {len(self._manifests)} file(s)")
        self.packs.release_keeps()
        self._manifests, self._chunks = [], set()
        self.journal.close()
        if self._remote_held is not None:
            self._remote_held.close()
            self._remote_held = None
        return tip
