"""The worker: takes pending manifests from the notes, packs their chunks with the best verified codecs, commits."""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import manifest as manifest_mod
from .codecs import CodecError, train_zstd_dict
from .index import ChunkIndex
from .local import LocalStore
from .notes import Notes
from .objects import encode_commit, object_id
from .pack import PackWriter
from .planner import choose, is_text
from .publish import prepare, publish_local
from .reader import ChunkSource, ReadError
from .recipe import MAX_RECIPE_SIZE, RECIPE_FORMAT, RecipeError, parse_recipe
from .repo import ObjectTooLarge
from .segment import WHOLE_FILE_FORMATS, Segment, SmallFile, group_small_files, plan_segments, sniff_format
from .store import MAX_LIST_SIZE, PACK_REFS, RAW_REFS, Store, fan, manifest_path, pack_path, parse_list
from .sync import SyncError, fetch, push, push_once, remote_refs
from .treeedit import TreeEditor

LEASE_SECONDS = 900
MAX_ATTEMPTS = 3
CLAIM_ATTEMPTS = 8          # compare-and-swap rounds of a claim against other workers
BATCH_FILES = 256          # files claimed at once, so small files can share solid segments
BATCH_BYTES = 8 << 20      # ... but not so many bytes that one worker takes the whole backlog
SMALL_FILE = 1 << 20       # files up to this size are grouped with others
SAMPLE_BYTES = 64 << 10
DICT_SIZE = 112 << 10
DICT_SAMPLE = 16 << 10
TINY_DUPLICATE = 4096      # at most this many already-packed bytes are packed again to keep a file whole
THREAD_MEMORY = 1 << 30    # a segment in flight at effort 2: its bytes, the expanded copy, a 256 MiB PPMd model


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Every usable core busy across the jobs, none oversubscribed, and no more threads than memory holds."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        memory = 0
    by_memory = memory // (jobs * THREAD_MEMORY) if memory > 0 else 1 << 30
    return max(1, min(usable_cores() // jobs, by_memory))


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
    duplicate_bytes: int = 0     # bytes packed again although another pack holds them
    file_stored_bytes: int = 0   # the whole file's share of every pack holding its chunks, after this job
    error: str | None = None


class Worker:
    def __init__(self, repo, effort: int = 2, remote: str | None = None, worker_id: str | None = None,
                 lease_seconds: int = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS, device: str = "cpu", log=None,
                 threads: int = 1):
        self.repo = repo
        self.effort = effort
        self.threads = max(1, threads)   # segments and codec candidates encoded at once
        self.remote = remote
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.device = device
        self.store = Store(repo)
        self.notes = Notes(repo)
        self.log = log or (lambda message: None)
        self._state = None        # the remote as the last fetch saw it

    # --- the queue -------------------------------------------------------------------------------
    def _sync_in(self):
        if self.remote:
            self._state = fetch(self.repo, self.remote)
            # The remote's store as fetched, opened once: asked per chunk in the hot path.
            self._remote_store = TreeEditor(self.repo, self._state.base_tree)
        else:   # no remote to publish through: committed files are work as they are
            publish_local(self.repo)

    def _sync_out(self, made: "_PackBuilder", source: ChunkSource, notes_changed: bool = True):
        """Push the new packs (recipes, and the ref holding their data) and the notes; with them, remove
        the remote's raw batches whose every chunk a pack yields that this side decoded and re-hashed
        and that the remote will hold: this run's (verified as they were made) or one in its store.
        Then drop our own raw copies of what this run packed."""
        replaced = set(made.yielded)
        delete = {}
        if self.remote:
            on_remote = lambda pack: self._remote_store.get(pack_path(pack)) is not None   # noqa: E731
            batches = self.store.raw_batches()
            verified = set(replaced)
            for ref, oid in remote_refs(self.repo, self.remote, RAW_REFS).items():
                if self._covered(batches.get(ref[len(RAW_REFS):]), verified, source, on_remote):
                    delete[ref] = oid
            if made.recipes or delete or notes_changed:
                push(self.repo, self.remote, revs=[], packs=made.recipes, bulk=made.refs, delete=delete)
        if replaced:
            LocalStore(self.repo).drop([], sorted(replaced), f"panini: {self.id} packed {len(replaced)} chunk(s)")

    def _covered(self, listing: str | None, verified: set[str], source: ChunkSource, on_remote) -> bool:
        try:
            chunks = parse_list(self.repo.read_kind(listing, "blob", MAX_LIST_SIZE), self.repo.hex_len) if listing else []
        except ObjectTooLarge:
            return False
        for chunk in chunks:
            if chunk not in verified and not source.verify_packed(chunk, on_remote):
                return False
            verified.add(chunk)
        return bool(chunks)

    def claim(self, limit: int, job: str | None = None) -> list[str]:
        """Take up to `limit` claimable manifests (only those queued for `job`, if given) under a lease.

        With a remote, the claim is published by a compare-and-swap push of the notes on top of the
        remote tip just fetched. If another worker pushed first, our claim is undone locally and made
        again on the new tip, so two workers never both hold a live lease on a file. (A merging push
        would let a later claim override one already published, and every worker packs everything.)"""
        claimed: dict[str, dict] = {}
        for attempt in range(CLAIM_ATTEMPTS):
            self._sync_in()
            written = self._claim_locally(limit, job)
            claimed.update(written)
            if not written or not self.remote or self._publish_claim():
                break
            # Lost the race: forget our claim (the next fetch brings the winner's), then claim again.
            self._unclaim(written)
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        # Keep only what is still ours (a worker sharing this repository may have pushed our claim for us).
        current = self.notes.all() if claimed else {}
        return [m for m in claimed if current.get(m, {}).get("worker") == self.id
                and current.get(m, {}).get("status") == "processing"][:limit]

    def _claim_locally(self, limit: int, job: str | None) -> dict[str, dict]:
        """Claim in our notes ref only; returns {manifest: the note as it was before}."""
        at = datetime.now(timezone.utc)
        # With a remote, its notes decide (the claim is pushed on top of exactly them): ours are one
        # namespace for every remote, and may say "completed" for packs only another remote holds.
        if self.remote:
            notes = self.notes.all(self._state.notes) if self._state.notes else {}
            if job is not None:   # a dispatcher of this repository queued the job here (published later)
                notes |= {m: n for m, n in self.notes.all().items() if n.get("status") == "queued" and n.get("job") == job}
        else:
            notes = self.notes.all()
        # With a remote, only its files: a pack of anything else would carry that file's bytes there.
        published = self._remote_store if self.remote else None
        # Small files first: they batch into shared segments, and finish quickly.
        pool = sorted((m for m, n in notes.items() if claimable(n, at, self.max_attempts, job)
                       and (job is None or n.get("job") == job)
                       and (published is None or published.get(manifest_path(m)) is not None)),
                      key=lambda m: (notes[m].get("bytes") or 0, m))
        self._lease = lease = _iso(at + timedelta(seconds=self.lease_seconds))
        taken: dict[str, dict] = {}

        def change(manifest, note):
            if manifest == pool[0]:
                taken.clear()   # transition runs this again from the start when another writer got in first
            if self.remote:
                note = notes.get(manifest)
            if len(taken) >= limit or not claimable(note, at, self.max_attempts, job):
                return None
            if taken and sum(int((notes.get(m) or {}).get("bytes") or 0) for m in taken) >= BATCH_BYTES:
                return None
            taken[manifest] = note
            return dict(note, status="processing", worker=self.id, lease_until=lease)

        written = self.notes.transition(pool, change, f"panini: {self.id} claims work")
        return {m: taken[m] for m in written}

    def _unclaim(self, previous: dict[str, dict]):
        """Put back the notes we claimed (locally) and that are still ours under this lease."""
        lease = self._lease

        def change(manifest, note):
            if note and note.get("worker") == self.id and note.get("lease_until") == lease:
                return previous[manifest]
            return None

        self.notes.transition(list(previous), change, f"panini: {self.id} lost a claim race")

    def _publish_claim(self) -> bool:
        """Push our claim on top of the remote's notes tip we fetched and claimed on; False if the
        remote moved since."""
        try:
            return push_once(self.repo, self._state, prepare(self.repo, self._state, [])) is not None
        except SyncError as e:
            self.log(f"could not publish claim: {e}")
            return True   # unreachable remote: work on what we claimed locally, as before

    def run(self, max_files: int | None = None, job: str | None = None, progress=None) -> list[WorkResult]:
        results: list[WorkResult] = []
        while max_files is None or len(results) < max_files:
            limit = BATCH_FILES if max_files is None else min(BATCH_FILES, max_files - len(results))
            claimed = self.claim(limit, job=job)
            if not claimed:
                break
            results += self.process(claimed, progress)
        if not self.remote or self._state is not None:
            self._clean_up()
        return results

    def _clean_up(self):
        """Raw copies can outlive the work (two workers each packed part of one batch; a worker killed
        between its store commit and dropping them): remove the remote's raw batches and our local raw
        chunks that a pack yields, once decoded and re-hashed here. The pack must be one the remote
        holds (in its store), or without a remote one whose data is here."""
        source = ChunkSource(self.repo, remote=self.remote)
        try:
            if self.remote:
                self._sync_out(_PackBuilder(self.repo, 0, source, []), source, notes_changed=False)
                allowed = lambda pack: self._remote_store.get(pack_path(pack)) is not None   # noqa: E731
            else:
                allowed = lambda pack: all(self.repo.exists(b) for b in source.index.pack_blobs(pack))  # noqa: E731
            local = LocalStore(self.repo)
            packed = [c for c in local.chunks() if source.index.locate(c) and source.verify_packed(c, allowed)]
            if packed:
                local.drop([], packed, f"panini: {self.id} dropped {len(packed)} packed raw chunk(s)")
        except SyncError as e:
            self.log(f"could not remove packed raw copies: {e}")
        finally:
            source.close()

    # --- one batch -------------------------------------------------------------------------------
    def process(self, manifests: list[str], progress=None) -> list[WorkResult]:
        """Pack the chunks of claimed manifests, commit the packs, then mark each note done or failed."""
        source = ChunkSource(self.repo, remote=self.remote)
        try:
            results, made = self._pack_batch(manifests, source, progress)
            self._finish(results, made, source)
        finally:
            source.close()
        return list(results.values())

    def _pack_batch(self, manifests: list[str], source: ChunkSource, progress):
        index = source.index
        index.refresh()
        source.prefetch(manifests)   # everything the batch reads, in one fetch
        results: dict[str, WorkResult] = {}
        segments: list[Segment] = []
        small: list[SmallFile] = []
        seen: set[str] = set()       # a chunk shared by two files of the batch is packed once
        file_chunks: dict[str, list[tuple[str, int]]] = {}
        for manifest in manifests:
            try:
                chunks = self._read_manifest(manifest)
                todo = [(c, s) for c, s in chunks if c not in seen and not self._packed_there(index, c)]
                head = source.read(*chunks[0])[:SAMPLE_BYTES] if chunks else b""
                shared = sum(s for _, s in chunks) - sum(s for _, s in todo)
                if 0 < shared <= TINY_DUPLICATE and todo and sniff_format(head) in WHOLE_FILE_FORMATS:
                    # A few bytes shared with other files (a PNG's IEND, say) are packed again so
                    # the whole-file codec still sees the whole file.
                    todo = list(chunks)
                    duplicated = shared
                else:
                    duplicated = 0
                for c, s in todo:   # every chunk is read (and so verified) before anything is packed
                    source.read(c, s)
            except (ReadError, manifest_mod.ManifestError) as e:
                results[manifest] = WorkResult(manifest, False, error=str(e))
                continue
            seen.update(c for c, _ in todo)
            file_chunks[manifest] = chunks
            results[manifest] = WorkResult(manifest, True, raw_bytes=sum(s for _, s in chunks),
                                           duplicate_bytes=duplicated)
            if sum(s for _, s in chunks) <= SMALL_FILE:
                if todo:
                    small.append(SmallFile(manifest, todo, head))
            else:
                pending = {c for c, _ in todo}
                segments += plan_segments(chunks, lambda c: c not in pending, source.read)
        segments += group_small_files(small, is_text, self.device)
        owner = {c: m for m, chunks in file_chunks.items() for c, _ in chunks}
        packer = _PackBuilder(self.repo, self.effort, source, segments, self.threads)
        for segment, choice, raw_size in packer.add_all(segments):
            for c, s in segment.chunks:
                r = results[owner[c]]
                r.packed_bytes += s
                r.stored_bytes += s * len(choice.encoded) / raw_size
                r.codecs[choice.codec_names] = r.codecs.get(choice.codec_names, 0) + s
            self.log(f"segment of {len(segment.chunks)} chunks: {raw_size} -> {len(choice.encoded)} bytes "
                     f"with {choice.codec_names}")
            if progress:
                progress(raw_size)
        packer.commit(self.store, self.id)
        index.refresh()
        ratios: dict[str, float] = {}
        for manifest, chunks in file_chunks.items():
            r = results[manifest]
            r.stored_bytes = int(round(r.stored_bytes))
            r.file_stored_bytes = _file_share(self.repo, index, chunks, ratios)
        return results, packer

    def _packed_there(self, index: ChunkIndex, chunk: str) -> bool:
        """Some pack yields the chunk where our results go: the remote's store (a pack only another
        remote holds does not count), or without a remote, ours."""
        located = index.locate(chunk)
        if not self.remote:
            return bool(located)
        return any(self._remote_store.get(pack_path(pack)) is not None for pack, _, _, _ in located)

    def _read_manifest(self, manifest: str) -> list[tuple[str, int]]:
        data = self.repo.read_kind(manifest, "blob")
        if data is None:
            raise ReadError(f"manifest {manifest} is missing")
        return manifest_mod.parse(data, self.repo.hex_len)

    def _finish(self, results: dict[str, WorkResult], made: "_PackBuilder", source: ChunkSource):
        def change(manifest, note):
            result = results[manifest]
            note = dict(note or {})
            if note.get("status") == "completed" and note.get("worker") != self.id:
                return None   # another worker completed it meanwhile
            attempts = int(note.get("attempts") or 0) + (0 if result.ok else 1)
            if result.ok:
                return dict(note, status="completed", stored_bytes=result.file_stored_bytes, attempts=attempts,
                            error=None, lease_until=None, worker=self.id, codecs=result.codecs)
            # "failed" even with attempts left (claimable() retakes those): "pending" would rank below our own
            # published "processing" claim in the notes merge, and the failure would vanish on push.
            return dict(note, status="failed", attempts=attempts, error=result.error, lease_until=None,
                        worker=self.id)
        self.notes.transition(sorted(results), change, f"panini: {self.id} finished {len(results)} file(s)")
        try:
            self._sync_out(made, source)
        except SyncError as e:
            self.log(f"could not publish results: {e}")


def _file_share(repo, index: ChunkIndex, chunks: list[tuple[str, int]], ratios: dict[str, float]) -> int:
    """A file's share of the packs holding its chunks (each chunk its share of its pack's encoded
    size; a chunk still raw counts in full). `ratios` caches each pack's ratio across files."""
    total = 0.0
    for chunk, size in chunks:
        located = index.locate(chunk)
        if not located:
            total += size
            continue
        pack = located[0][0]
        if pack not in ratios:
            ratios[pack] = _pack_ratio(repo, pack)
        total += size * ratios[pack]
    return int(round(total))


def _pack_ratio(repo, pack: str) -> float:
    """Encoded / decoded size of a pack; 1.0 when its recipe cannot be read (it saves nothing then)."""
    try:
        recipe = parse_recipe(repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"", repo.hex_len)
        return recipe["encoded_size"] / recipe["size"] if recipe["size"] else 0.0
    except (RecipeError, ObjectTooLarge, KeyError, TypeError):
        return 1.0


class _PackBuilder:
    """Encodes segments into packs (a data blob + its recipe) and commits them: recipes to the store,
    data and dictionaries to a new bulk ref refs/panini/packs/<commit>."""

    def __init__(self, repo, effort: int, source: ChunkSource, segments: list[Segment], threads: int = 1):
        self.repo, self.effort, self.source, self.threads = repo, effort, source, threads
        self.writer = PackWriter(repo.objects_dir, repo.algo)
        self.recipes: list[str] = []         # pack ids (recipe oids)
        self.bulk: list[str] = []            # data blobs and dictionaries the packs need
        self.refs: dict[str, str] = {}       # the ref holding them once committed
        self.dicts: dict[str, bytes] = {}    # dictionaries some pack uses
        self.yielded: list[str] = []
        self._dict = self._train_dict(segments) if effort >= 2 else None

    def _train_dict(self, segments: list[Segment]) -> tuple[str, bytes] | None:
        """One zstd dictionary shared by the batch's small text segments, offered as a candidate."""
        samples = []
        for segment in segments:
            if segment.format is None and len(segment.chunks) > 1:
                samples += [self.source.read(c, s)[:DICT_SAMPLE] for c, s in segment.chunks]
        if len(samples) < 16:
            return None
        try:
            data = train_zstd_dict(samples, DICT_SIZE)
        except CodecError:
            return None
        return object_id("blob", data, self.repo.algo), data

    def add_all(self, segments: list[Segment]):
        """Encode segments, `threads` at a time (and their candidates in as many threads), and add them
        in order: yields (segment, choice, raw size). Chunks are read and packs written in this thread
        only; at most `threads` segments are in memory ahead of the writer."""
        if self.threads <= 1:
            for segment in segments:
                raw = self._read(segment)
                yield segment, self._add(segment, raw, self._choose(segment, raw, None)), len(raw)
            return
        with ThreadPoolExecutor(self.threads) as by_segment, ThreadPoolExecutor(self.threads) as by_codec:
            ahead: deque = deque()
            for segment in segments + [None]:
                if segment is not None:
                    raw = self._read(segment)
                    ahead.append((segment, raw, by_segment.submit(self._choose, segment, raw, by_codec)))
                while ahead and (segment is None or len(ahead) > self.threads):
                    done, raw, future = ahead.popleft()
                    yield done, self._add(done, raw, future.result()), len(raw)

    def _read(self, segment: Segment) -> bytes:
        return b"".join(self.source.read(c, s) for c, s in segment.chunks)

    def _deps(self) -> dict[str, bytes]:
        return {self._dict[0]: self._dict[1]} if self._dict else {}

    def _choose(self, segment: Segment, raw: bytes, pool):
        extra = [[("zstd", {"level": 19, "dict": self._dict[0]})]] if self._dict else []
        return choose(raw, segment.format, self.effort, self._deps(), extra, pool)

    def _add(self, segment: Segment, raw: bytes, choice):
        deps = self._deps()
        used = sorted({step["params"]["dict"] for step in choice.steps if "dict" in step["params"]})
        for oid in used:
            self.dicts[oid] = deps[oid]
        data_oid = self.writer.add("blob", choice.encoded)
        offsets, pos = [], 0
        for c, s in segment.chunks:
            offsets.append([c, pos, s])
            pos += s
        recipe = {"format": RECIPE_FORMAT, "size": len(raw), "steps": choice.steps, "deps": used,
                  "data": data_oid, "encoded_size": len(choice.encoded), "chunks": offsets, "tried": choice.tried}
        recipe_bytes = json.dumps(recipe, sort_keys=True).encode()
        parse_recipe(recipe_bytes, self.repo.hex_len)   # a recipe readers would refuse must never replace chunks
        self.recipes.append(self.writer.add("blob", recipe_bytes))
        self.bulk.append(data_oid)
        self.yielded += [c for c, _ in segment.chunks]
        return choice

    def commit(self, store: Store, worker_id: str):
        """Bulk ref first, then the store: a recipe is never recorded before its data is reachable."""
        for data in self.dicts.values():
            self.bulk.append(self.writer.add("blob", data))
        self.writer.flush()
        if not self.recipes:
            return
        editor = TreeEditor(self.repo, None)
        for oid in self.bulk:
            editor.set(fan(oid), oid)
        commit = self.repo.write_object("commit", encode_commit(editor.write(), [], "panini: pack data",
                                                                 content_addressed=True))
        self.repo.update_ref(PACK_REFS + commit, commit, None, "panini: pack data")
        self.refs = {PACK_REFS + commit: commit}
        store.add_packs(self.recipes, f"panini: {worker_id} packs {len(self.yielded)} chunks into "
                                      f"{len(self.recipes)} packs")
