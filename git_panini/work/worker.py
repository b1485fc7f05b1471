"""The worker: takes pending manifests from the notes, packs their chunks with the best verified codecs, commits."""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..codecs import CodecError, train_zstd_dict
from ..format import manifest as manifest_mod
from ..format.recipe import MAX_RECIPE_SIZE, RECIPE_FORMAT, RecipeError, parse_recipe
from ..format.segment import WHOLE_FILE_FORMATS, Segment, SmallFile, group_small_files, plan_segments, sniff_format
from ..git.objects import encode_commit, object_id
from ..git.pack import PackWriter
from ..git.repo import ObjectTooLarge, Repo
from ..git.tree_edit import TreeEditor
from ..store.chunk_index import ChunkIndex
from ..store.chunk_source import ChunkSource, ReadError
from ..store.local import LocalStore
from ..store.notes import STATE_RANK, Notes
from ..store.shared import MAX_LIST_SIZE, PACK_REFS, RAW_REFS, Store, fan, manifest_path, pack_path, parse_list
from ..transfer.publish import prepare, publish_local
from ..transfer.remote import remote_objects
from ..transfer.sync import SyncError, fetch, push, push_once, remote_refs
from ..util.units import human
from .lease import (
    CLOCK_SKEW_SECONDS,
    NO_HOLDER,
    Renewer,
    held_here,
    holder,
    holder_alive,
    interruptible,
    lapsed,
    released,
    uninterrupted,
)
from .lease import iso as _iso
from .planner import choose, is_text

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


MAX_ERROR = 400            # characters of an error kept in a note: one line, never a traceback


def claimable(note: dict | None, at: datetime, max_attempts: int = MAX_ATTEMPTS, job: str | None = None,
              skew: float = CLOCK_SKEW_SECONDS) -> bool:
    """Pending work, work whose lease lapsed (lease.lapsed: its local holder is gone, or its time plus
    the clock-skew margin passed), failures with attempts left, and the queued work of `job`."""
    if not note:
        return False
    status = note.get("status")
    if job is not None and status == "queued" and note.get("job") == job:
        return True
    if status == "pending":
        return True
    if status in ("queued", "processing"):
        return lapsed(note, at, skew)
    return status == "failed" and int(note.get("attempts") or 0) < max_attempts


def one_line(error: BaseException) -> str:
    """An exception as a note's error: our own errors as they read, anything else with its type."""
    text = str(error).strip().splitlines()
    text = text[0] if text else ""
    if not isinstance(error, (ReadError, manifest_mod.ManifestError, RecipeError, CodecError)):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text[:MAX_ERROR]


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
    seconds: float = 0.0         # its share (by raw bytes) of the batch's packing time
    error: str | None = None


class Worker:
    def __init__(self, repo, effort: int = 2, remote: str | None = None, worker_id: str | None = None,
                 lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS, device: str = "cpu", log=None,
                 skew: float = CLOCK_SKEW_SECONDS, threads: int = 1):
        self.repo = repo
        self.effort = effort
        self.threads = max(1, threads)   # segments and codec candidates encoded at once
        self.remote = remote
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.device = device
        self.skew = skew
        self.store = Store(repo)
        self.notes = Notes(repo)
        self.log = log or (lambda message: None)
        self._state = None        # the remote as the last fetch saw it
        self.released: dict[str, dict] = {}   # what an interruption handed back: {manifest: note}

    def _twin(self) -> "Worker":
        """This worker on a repository handle (and remote state) of its own, for another thread, or
        for after an interruption (a Ctrl-C also stops the git processes our handle reads through)."""
        repo = Repo(self.repo.work_tree or self.repo.git_dir)
        return Worker(repo, self.effort, self.remote, self.id, self.lease_seconds, self.max_attempts, self.device,
                      self.log, self.skew)

    # --- the queue -------------------------------------------------------------------------------
    def _sync_in(self, publish: bool = True):
        if self.remote:
            self._state = fetch(self.repo, self.remote)
            # The remote's store as fetched, opened once: asked per chunk in the hot path.
            self._remote_store = TreeEditor(self.repo, self._state.base_tree)
        elif publish:   # no remote to publish through: committed files are work as they are
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

    def _cas(self, plan, message: str, publish_local_files: bool = False) -> dict[str, dict]:
        """Rewrite notes the way claims are made: plan() (run after each fetch) gives (manifests, change).
        With a remote, change runs on the remote's notes exactly as fetched, in a commit of this process
        only, published by a compare-and-swap push on top of them; our notes ref records it only once the
        remote holds it. If another writer pushed first, all is done again on the new tip, so two workers
        never both hold a live lease on a file. (Writing our notes ref first would not do: every process
        of this repository shares it and every push carries it, so a sibling's push could publish our
        claim while our own push lost, and we would undo here a claim the remote holds: its files
        stranded `processing`.) Claims, lease renewals and releases all take this path.
        Returns {manifest: note written}."""
        if not self.remote:
            self._sync_in(publish_local_files)
            manifests, change = plan()
            return self.notes.transition(manifests, change, message) if manifests else {}
        for attempt in range(CLAIM_ATTEMPTS):
            self._sync_in(publish_local_files)
            manifests, change = plan()
            before: dict[str, dict | None] = {}

            def recorded(manifest, note):
                new = change(manifest, note)
                if new is not None:
                    before[manifest] = note
                return new

            commit, written = self.notes.rewrite(self._state.notes, manifests, recorded, message)
            if commit is None:
                return {}
            if self._publish_notes(commit):
                self._record(written, before, message)
                return written
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
        return {}

    def claim(self, limit: int, job: str | None = None) -> list[str]:
        """Take up to `limit` claimable manifests (only those queued for `job`, if given) under a lease
        naming this process (lease.holder), by compare-and-swap (_cas)."""
        claimed = self._cas(lambda: self._claim_plan(limit, job), f"panini: {self.id} claims work",
                            publish_local_files=True)
        # Keep only what is still ours (a process sharing this repository may have written a later state here).
        current = self.notes.all() if claimed else {}
        return [m for m in claimed if current.get(m, {}).get("worker") == self.id
                and current.get(m, {}).get("status") == "processing"][:limit]

    def _claim_plan(self, limit: int, job: str | None):
        """(manifests, change) of a claim on the notes just fetched."""
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
        pool = sorted((m for m, n in notes.items() if claimable(n, at, self.max_attempts, job, self.skew)
                       and (job is None or n.get("job") == job)
                       and (published is None or published.get(manifest_path(m)) is not None)),
                      key=lambda m: (notes[m].get("bytes") or 0, m))
        lease = _iso(at + timedelta(seconds=self.lease_seconds))
        taken: dict[str, dict] = {}

        def change(manifest, note):
            if manifest == pool[0]:
                taken.clear()   # transition runs this again from the start when another writer got in first
            if self.remote:
                note = notes.get(manifest)
            if len(taken) >= limit or not claimable(note, at, self.max_attempts, job, self.skew):
                return None
            if taken and sum(int((notes.get(m) or {}).get("bytes") or 0) for m in taken) >= BATCH_BYTES:
                return None
            taken[manifest] = note
            # A lapsed lease retaken keeps the state its first holder took the file from.
            prior = note.get("status") if note.get("status") != "processing" else note.get("prior")
            return dict(note, status="processing", worker=self.id, lease_until=lease, prior=prior, **holder())

        return pool, change

    def _publish_notes(self, commit: str) -> bool:
        """Push notes commit `commit` (a child of the remote's notes tip we fetched); False if the remote
        moved since."""
        out = prepare(self.repo, self._state, [])
        out.notes = commit   # ours alone: not the other notes of our (shared) ref that prepare would add
        try:
            return push_once(self.repo, self._state, out) is not None
        except SyncError as e:
            self.log(f"could not publish claim: {e}")
            return True   # unreachable remote: work on what we claimed locally, as before

    def _record(self, written: dict[str, dict], before: dict[str, dict | None], message: str):
        """Our notes ref takes the notes the remote now holds from us (a release too, which the notes
        merge alone would not take: it ranks below the lease it ends), except where a sibling process
        of this repository wrote a later state of a file here meanwhile (its next push carries that)."""
        def apply(editor: TreeEditor):
            for manifest, note in written.items():
                entry = editor.get(self.notes.path(manifest))
                here = self.notes.load(entry.oid) if entry else None
                if here is None or here == before.get(manifest) or _later(note, here):
                    editor.set(self.notes.path(manifest), self.repo.write_object("blob", self.notes.encode(note)))

        self.notes.edit(apply, message)

    def _ours(self, note: dict | None) -> bool:
        return bool(note) and note.get("status") == "processing" and note.get("worker") == self.id

    def renew(self, manifests: list[str]) -> dict[str, dict]:
        """Extend our leases on these files (those still ours) by a full lease, by compare-and-swap."""
        def plan():
            until = _iso(datetime.now(timezone.utc) + timedelta(seconds=self.lease_seconds))
            return manifests, lambda m, note: dict(note, lease_until=until) if self._ours(note) else None

        return self._cas(plan, f"panini: {self.id} renews {len(manifests)} lease(s)")

    def release(self, manifests: list[str] | None = None, force: bool = False) -> tuple[dict[str, dict], dict[str, dict]]:
        """Hand leases back: each file returns to the state it was claimed from, and no attempt is counted.
        Without force, only leases of this worker or of a process of this machine that is gone; with
        force, any lease. manifests=None: every file under a lease. Returns (released, kept): the
        leases as they were, {manifest: note}, of those handed back and of those left alone."""
        kept: dict[str, dict] = {}
        before: dict[str, dict] = {}

        def plan():
            kept.clear()
            names = manifests if manifests is not None else sorted(
                m for m, n in self.notes.all().items() if n.get("status") == "processing")
            return names, change

        def change(manifest, note):
            if not note or note.get("status") != "processing":
                return None
            if not (force or self._ours(note) or (held_here(note) and not holder_alive(note))):
                kept[manifest] = note
                return None
            before[manifest] = note
            return released(note)

        written = self._cas(plan, f"panini: {self.id} releases leases")
        return {m: before[m] for m in written}, {m: n for m, n in kept.items() if m not in written}

    def run(self, max_files: int | None = None, job: str | None = None, progress=None) -> list[WorkResult]:
        """Work until nothing is claimable (or max_files). On SIGINT or SIGTERM the leases this worker
        holds are handed back (self.released) before the interruption goes on."""
        results: list[WorkResult] = []
        with interruptible():
            try:
                while max_files is None or len(results) < max_files:
                    limit = BATCH_FILES if max_files is None else min(BATCH_FILES, max_files - len(results))
                    claimed = self.claim(limit, job=job)
                    if not claimed:
                        break
                    results += self.process(claimed, progress)
            except KeyboardInterrupt:
                with uninterrupted():
                    self._hand_back()
                raise
        if not self.remote or self._state is not None:
            self._clean_up()
        return results

    def _clean_up(self):
        """Raw copies can outlive the work (two workers each packed part of one batch; a worker killed
        between its store commit and dropping them): remove the remote's raw batches and our local raw
        chunks that a pack yields, once decoded and re-hashed here. The pack must be one the remote
        holds (in its store), or without a remote one whose data is here."""
        source = ChunkSource(self.repo, fetcher=remote_objects(self.repo, self.remote))
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

    def _hand_back(self):
        """Release this worker's leases after an interruption (through a fresh repository handle);
        if that fails, they lapse as a dead worker's do."""
        try:
            twin = self._twin()
            try:
                self.released = twin.release()[0]
            finally:
                twin.repo.close()
        except Exception as e:   # noqa: BLE001 - the interruption goes on; the leases lapse
            self.log(f"could not hand back leases: {one_line(e)}")

    # --- one batch -------------------------------------------------------------------------------
    def process(self, manifests: list[str], progress=None) -> list[WorkResult]:
        """Pack the chunks of claimed manifests, commit the packs, then mark each note done or failed.
        Leases are renewed meanwhile. A failure is charged to the file it belongs to; one that belongs
        to no single file (the batch's commit, say) to every file of the batch: never is a file left
        `processing` with nothing counted."""
        source = ChunkSource(self.repo, fetcher=remote_objects(self.repo, self.remote))
        try:
            with self._renewing(manifests):
                try:
                    started = time.monotonic()
                    results, made = self._pack_batch(manifests, source, progress)
                    _share_time(results, time.monotonic() - started)
                except Exception as e:   # noqa: BLE001 - whatever it was, the files are charged, not left behind
                    self.log(f"batch of {len(manifests)} file(s) failed: {one_line(e)}")
                    results = {m: WorkResult(m, False, error=one_line(e)) for m in manifests}
                    made = _PackBuilder(self.repo, 0, source, [])
            self._finish(results, made, source)
        finally:
            source.close()
        return list(results.values())

    @contextmanager
    def _renewing(self, manifests: list[str]):
        """Renew our leases on these files every third of a lease, from a thread with a repository
        handle of its own, while the block runs."""
        twin = None

        def renew():
            nonlocal twin
            try:
                twin = twin or self._twin()
                twin.renew(manifests)
            except Exception as e:   # noqa: BLE001 - a failed renewal is tried again at the next tick
                self.log(f"could not renew leases: {one_line(e)}")

        try:
            with Renewer(renew, self.lease_seconds / 3):
                yield
        finally:
            if twin is not None:
                twin.repo.close()

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
                large = sum(s for _, s in chunks) > SMALL_FILE
                if large:   # planning reads the file's other chunks too: a hostile pack may fail it here
                    pending = {c for c, _ in todo}
                    planned = plan_segments(chunks, lambda c: c not in pending, source.read)
            except Exception as e:   # noqa: BLE001 - charged to this file; the rest of the batch goes on
                results[manifest] = WorkResult(manifest, False, error=one_line(e))
                continue
            seen.update(c for c, _ in todo)
            file_chunks[manifest] = chunks
            results[manifest] = WorkResult(manifest, True, raw_bytes=sum(s for _, s in chunks),
                                           duplicate_bytes=duplicated)
            if large:
                segments += planned
            elif todo:
                small.append(SmallFile(manifest, todo, head))
        segments += group_small_files(small, is_text, self.device)
        owner = {c: m for m, chunks in file_chunks.items() for c, _ in chunks}
        packer = _PackBuilder(self.repo, self.effort, source, segments, self.threads)
        try:
            for segment, outcome in packer.add_all(segments):
                for part, (choice, raw_size) in self._packed_parts(packer, segment, outcome, owner, results):
                    for c, s in part.chunks:
                        r = results[owner[c]]
                        r.packed_bytes += s
                        r.stored_bytes += s * len(choice.encoded) / raw_size
                        r.codecs[choice.codec_names] = r.codecs.get(choice.codec_names, 0) + s
                    self.log(f"segment of {len(part.chunks)} chunks: {human(raw_size)} -> "
                             f"{human(len(choice.encoded))} with {choice.codec_names}")
                    if progress:
                        progress(raw_size)
            packer.commit(self.store, self.id)
        except BaseException:
            packer.discard()   # a full disk: packs no ref reaches must not keep it full
            raise
        index.refresh()
        ratios: dict[str, float] = {}
        for manifest, chunks in file_chunks.items():
            r = results[manifest]
            r.stored_bytes = int(round(r.stored_bytes))
            r.file_stored_bytes = _file_share(self.repo, index, chunks, ratios)
        return results, packer

    def _packed_parts(self, packer: "_PackBuilder", segment: Segment, outcome, owner: dict[str, str],
                      results: dict[str, WorkResult]) -> list:
        """[(segment packed, (choice, raw size))]. A segment that failed (outcome is its exception) is packed
        again file by file (small files share segments), and a file whose own part still fails is charged."""
        if not isinstance(outcome, Exception):
            return [(segment, outcome)]
        error = outcome
        parts: dict[str, Segment] = {}
        for c, s in segment.chunks:
            parts.setdefault(owner[c], Segment(format=segment.format)).chunks.append((c, s))
        if len(parts) == 1:
            [manifest] = parts
            self._charge(results[manifest], error)
            return []
        done = []
        for manifest, part in parts.items():
            try:
                done.append((part, packer.add(part)))
            except Exception as e:   # noqa: BLE001
                self._charge(results[manifest], e)
        return done

    def _charge(self, result: WorkResult, error: BaseException):
        result.ok, result.error = False, one_line(error)
        self.log(f"failed {result.manifest}: {result.error}")

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
                return {**note, **NO_HOLDER, "status": "completed", "stored_bytes": result.file_stored_bytes,
                        "attempts": attempts, "error": None, "lease_until": None, "worker": self.id,
                        "codecs": result.codecs, "work_seconds": round(result.seconds, 3)}
            # "failed" even with attempts left (claimable() retakes those): "pending" would rank below our own
            # published "processing" claim in the notes merge, and the failure would vanish on push.
            return {**note, **NO_HOLDER, "status": "failed", "attempts": attempts, "error": result.error,
                    "lease_until": None, "worker": self.id}
        self.notes.transition(sorted(results), change, f"panini: {self.id} finished {len(results)} file(s)")
        try:
            self._sync_out(made, source)
        except SyncError as e:
            raise SyncError(f"packed {len(results)} file(s) here but could not publish them ({e}); the next "
                            "git panini work tries again") from None


def _later(note: dict, than: dict) -> bool:
    """`note` wins the notes merge over `than` (a higher state, or the same one updated later)."""
    return ((STATE_RANK.get(note.get("status"), -1), str(note.get("updated", "")))
            > (STATE_RANK.get(than.get("status"), -1), str(than.get("updated", ""))))


def _share_time(results: dict[str, WorkResult], seconds: float):
    """Spread a batch's packing time over its files by raw bytes (the dashboard's throughput)."""
    done = [r for r in results.values() if r.ok]
    total = sum(r.raw_bytes for r in done)
    for r in done:
        r.seconds = seconds * r.raw_bytes / total if total else seconds / len(done)


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
    """Encoded / decoded size of a pack; 1.0 when its recipe cannot be read or omits its encoded size
    (it saves nothing then)."""
    try:
        recipe = parse_recipe(repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"", repo.hex_len)
    except (RecipeError, ObjectTooLarge):
        return 1.0
    if recipe.get("encoded_size") is None:
        return 1.0
    return recipe["encoded_size"] / recipe["size"] if recipe["size"] else 0.0


class _PackBuilder:
    """Encodes segments into packs (a data blob + its recipe) and commits them: recipes to the store,
    data and dictionaries to a new bulk ref refs/panini/packs/<commit>."""

    def __init__(self, repo, effort: int, source: ChunkSource, segments: list[Segment], threads: int = 1):
        self.repo, self.effort, self.source, self.threads = repo, effort, source, threads
        self.writer = PackWriter(repo.objects_dir, repo.algo, sync=repo.fsync.wants("pack"))
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

    def add(self, segment: Segment):
        """Encode and add one segment here and now: (choice, raw size)."""
        raw = self._read(segment)
        return self._add(segment, raw, self._choose(segment, raw, None)), len(raw)

    def add_all(self, segments: list[Segment]):
        """Encode segments, `threads` at a time (and their candidates in as many threads), and add them
        in order: yields (segment, (choice, raw size)), or (segment, the exception) for a segment that
        failed, so the caller charges its files and the rest go on. Chunks are read and packs written in
        this thread only; at most `threads` segments are in memory ahead of the writer."""
        if self.threads <= 1:
            for segment in segments:
                try:
                    yield segment, self.add(segment)
                except Exception as e:  # noqa: BLE001 - the caller charges it to the segment's files
                    yield segment, e
            return
        with ThreadPoolExecutor(self.threads) as by_segment, ThreadPoolExecutor(self.threads) as by_codec:
            ahead: deque = deque()
            for segment in segments + [None]:
                if segment is not None:
                    try:
                        raw = self._read(segment)
                        ahead.append((segment, raw, by_segment.submit(self._choose, segment, raw, by_codec)))
                    except Exception as e:  # noqa: BLE001
                        ahead.append((segment, None, e))
                while ahead and (segment is None or len(ahead) > self.threads):
                    done, raw, pending = ahead.popleft()
                    try:
                        if isinstance(pending, Exception):
                            raise pending
                        yield done, (self._add(done, raw, pending.result()), len(raw))
                    except Exception as e:  # noqa: BLE001
                        yield done, e

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
        if self.repo.ref(PACK_REFS + commit, peel=False) != commit:
            raise OSError(f"could not create {PACK_REFS + commit}")
        self.refs = {PACK_REFS + commit: commit}
        store.add_packs(self.recipes, f"panini: {worker_id} packs {len(self.yielded)} chunks into "
                                      f"{len(self.recipes)} packs")

    def discard(self):
        """Delete this batch's packs unless a ref already reaches them (then gc decides)."""
        if not self.refs:
            self.writer.discard()
