"""The worker: takes pending manifests from the notes, packs their chunks with the best verified codecs, commits."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import manifest as manifest_mod
from .index import ChunkIndex
from .notes import Notes
from .objects import MODE_TREE, TreeEntry, encode_tree
from .pack import PackWriter
from .planner import choose
from .reader import ChunkSource, ReadError
from .recipe import RECIPE_FORMAT
from .segment import plan_segments
from .store import Store, chunk_path, fan
from .sync import SyncError, fetch, push

LEASE_SECONDS = 900
MAX_ATTEMPTS = 3


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claimable(note: dict | None, at: datetime, max_attempts: int = MAX_ATTEMPTS, job: str | None = None) -> bool:
    """Pending work, work whose lease ran out, failures with attempts left, and the queued work of `job`."""
    if not note:
        return False
    status = note.get("status")
    if job is not None and status == "queued" and note.get("job") == job:
        return True
    if status == "pending":
        return True
    if status in ("queued", "processing"):
        return str(note.get("lease_until") or "") < _iso(at)
    return status == "failed" and int(note.get("attempts") or 0) < max_attempts


@dataclass
class WorkResult:
    manifest: str
    ok: bool
    raw_bytes: int = 0
    packed_bytes: int = 0        # bytes of chunks this job packed
    stored_bytes: int = 0        # their encoded size
    codecs: dict = field(default_factory=dict)   # chain -> bytes of input
    error: str | None = None


class Worker:
    def __init__(self, repo, effort: int = 2, remote: str | None = None, worker_id: str | None = None,
                 lease_seconds: int = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS, log=None):
        self.repo = repo
        self.effort = effort
        self.remote = remote
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.store = Store(repo)
        self.notes = Notes(repo)
        self.log = log or (lambda message: None)

    # --- the queue -------------------------------------------------------------------------------
    def _sync_in(self):
        if self.remote:
            fetch(self.repo, self.remote)

    def _sync_out(self):
        if self.remote:
            push(self.repo, self.remote)

    def claim(self, limit: int, job: str | None = None) -> list[str]:
        """Take up to `limit` claimable manifests (only those queued for `job`, if given) under a lease."""
        self._sync_in()
        at = datetime.now(timezone.utc)
        pool = sorted(m for m, n in self.notes.all().items() if claimable(n, at, self.max_attempts, job)
                      and (job is None or n.get("job") == job))
        lease = _iso(at + timedelta(seconds=self.lease_seconds))
        taken: list[str] = []

        def change(manifest, note):
            if len(taken) >= limit or not claimable(note, at, self.max_attempts, job):
                return None
            taken.append(manifest)
            return dict(note, status="processing", worker=self.id, lease_until=lease)

        written = self.notes.transition(pool, change, f"panini: {self.id} claims work")
        if written:
            try:
                self._sync_out()
            except SyncError as e:
                self.log(f"could not publish claim: {e}")
        # After a merge another worker's claim may have won: keep only what is still ours.
        mine = []
        for manifest in written:
            note = self.notes.get(manifest) or {}
            if note.get("worker") == self.id and note.get("status") == "processing":
                mine.append(manifest)
        return mine

    def run(self, max_files: int | None = None, job: str | None = None, progress=None) -> list[WorkResult]:
        results = []
        while max_files is None or len(results) < max_files:
            claimed = self.claim(1, job=job)
            if not claimed:
                break
            for manifest in claimed:
                results.append(self.process(manifest, progress))
        return results

    # --- one manifest ----------------------------------------------------------------------------
    def process(self, manifest: str, progress=None) -> WorkResult:
        source = ChunkSource(self.repo)
        try:
            result = self._pack_manifest(manifest, source, progress)
        except (ReadError, manifest_mod.ManifestError, OSError, ValueError) as e:
            result = WorkResult(manifest, False, error=str(e))
        finally:
            source.close()
        self._finish(result)
        return result

    def _pack_manifest(self, manifest: str, source: ChunkSource, progress) -> WorkResult:
        data = self.repo.read_kind(manifest, "blob")
        if data is None:
            raise ReadError(f"manifest {manifest} is missing")
        chunks = manifest_mod.parse(data, self.repo.hex_len)
        index = source.index
        index.refresh()
        result = WorkResult(manifest, True, raw_bytes=sum(s for _, s in chunks))
        segments = plan_segments(chunks, index.is_packed, source.read)
        writer = PackWriter(self.repo.objects_dir, self.repo.algo)
        packs: dict[str, str] = {}       # pack id -> pack tree
        yielded: list[str] = []
        for segment in segments:
            raw = b"".join(source.read(c, s) for c, s in segment.chunks)
            choice = choose(raw, segment.format, self.effort)
            data_oid = writer.add("blob", choice.encoded)
            offsets, pos = [], 0
            for c, s in segment.chunks:
                offsets.append([c, pos, s])
                pos += s
            recipe = {"format": RECIPE_FORMAT, "size": len(raw), "steps": choice.steps, "deps": [],
                      "data": data_oid, "encoded_size": len(choice.encoded), "chunks": offsets,
                      "tried": choice.tried}
            recipe_blob = json.dumps(recipe, sort_keys=True).encode()
            recipe_oid = writer.add("blob", recipe_blob)
            tree = encode_tree([TreeEntry("data", "100644", data_oid), TreeEntry("recipe", "100644", recipe_oid)])
            packs[recipe_oid] = writer.add("tree", tree)
            yielded += [c for c, _ in segment.chunks]
            result.packed_bytes += len(raw)
            result.stored_bytes += len(choice.encoded)
            result.codecs[choice.codec_names] = result.codecs.get(choice.codec_names, 0) + len(raw)
            self.log(f"{manifest[:12]}: {len(raw)} -> {len(choice.encoded)} bytes with {choice.codec_names}")
            if progress:
                progress(len(raw))
        writer.flush()
        if packs:
            def apply(editor):
                for pack_id, tree_oid in packs.items():
                    editor.set("packs/" + fan(pack_id), tree_oid, MODE_TREE)
                # The raw copies go only in the same commit that adds the packs replacing them.
                for c in yielded:
                    editor.remove(chunk_path(c))
            self.store.edit(apply, f"panini: {self.id} packs {len(yielded)} chunks into {len(packs)} packs")
        return result

    def _finish(self, result: WorkResult):
        def change(manifest, note):
            note = dict(note or {})
            if note.get("worker") not in (None, self.id) and note.get("status") == "completed":
                return None   # another worker completed it meanwhile
            attempts = int(note.get("attempts") or 0) + (0 if result.ok else 1)
            if result.ok:
                stored = self._stored_bytes(manifest)
                return dict(note, status="completed", stored_bytes=stored, attempts=attempts, error=None,
                            lease_until=None, worker=self.id, codecs=result.codecs)
            return dict(note, status="failed" if attempts >= self.max_attempts else "pending",
                        attempts=attempts, error=result.error, lease_until=None, worker=self.id)
        self.notes.transition([result.manifest], change, f"panini: {self.id} finished {result.manifest[:12]}")
        try:
            self._sync_out()
        except SyncError as e:
            self.log(f"could not publish results: {e}")

    def _stored_bytes(self, manifest: str) -> int:
        """The file's share of the packs holding its chunks (a chunk's share of its pack's encoded size)."""
        index = ChunkIndex(self.store)
        try:
            index.refresh()
            data = self.repo.read_kind(manifest, "blob") or b""
            total, ratios = 0.0, {}
            for chunk, size in manifest_mod.parse(data, self.repo.hex_len):
                located = index.locate(chunk)
                if not located:
                    total += size
                    continue
                pack_tree = located[0][1]
                if pack_tree not in ratios:
                    ratios[pack_tree] = _pack_ratio(self.repo, pack_tree)
                total += size * ratios[pack_tree]
            return int(round(total))
        finally:
            index.close()


def _pack_ratio(repo, pack_tree: str) -> float:
    entries = {e.name: e for e in repo.read_tree(pack_tree)}
    recipe = json.loads(repo.read_kind(entries["recipe"].oid, "blob"))
    return recipe["encoded_size"] / recipe["size"] if recipe["size"] else 0.0
