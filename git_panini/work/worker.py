"""The worker: claims pending files from the notes (Claims), packs them in batches with the best verified
codecs (BatchPacker), then marks each note done or failed, publishes, and removes raw copies packs replace."""

from __future__ import annotations

from contextlib import contextmanager

from ..store.chunk_source import ChunkSource
from ..store.local import LocalStore
from ..git.tree_edit import TreeEditor
from ..store import bulk
from ..store.shared import PACK_REFS, RAW_REFS, Store, bulk_list_path, pack_path
from ..transfer.remote import remote_objects
from ..transfer.sync import SyncError, learn_holdings, push
from ..util import crash_points
from .batch import BatchPacker
from .claims import BATCH_FILES, LEASE_SECONDS, MAX_ATTEMPTS, Claims
from .lease import CLOCK_SKEW_SECONDS, NO_HOLDER, Renewer, interruptible, uninterrupted
from . import retire
from .pack_builder import PackBuilder
from .result import WorkResult, note_error


REPACK_PASSES = 3   # measured: a lineage of 15 versions packed one by one was within the bound after 2


class Worker:
    """One worker process on a repository: claims batches of files, packs them, records the outcome."""

    def __init__(self, repo, effort: int = 2, remote: str | None = None, worker_id: str | None = None,
                 lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS, device: str = "cpu", log=None,
                 skew: float = CLOCK_SKEW_SECONDS, threads: int = 1):
        self.repo = repo
        self.remote = remote
        self.log = log or (lambda message: None)
        self.claims = Claims(repo, remote, worker_id, lease_seconds, max_attempts, skew, self.log)
        self.id = self.claims.id
        self.store = Store(repo)
        self.batches = BatchPacker(repo, self.store, self.id, effort, max(1, threads), device, self.log)
        self.released: dict[str, dict] = {}   # what an interruption handed back: {manifest: note}

    def run(self, max_files: int | None = None, job: str | None = None, progress=None) -> list[WorkResult]:
        """Work until nothing is claimable (or max_files). On SIGINT or SIGTERM the leases this worker
        holds are handed back (self.released) before the interruption goes on."""
        results: list[WorkResult] = []
        with interruptible():
            try:
                while max_files is None or len(results) < max_files:
                    limit = BATCH_FILES if max_files is None else min(BATCH_FILES, max_files - len(results))
                    claimed = self.claims.claim(limit, job=job)
                    if not claimed:
                        break
                    results += self.process(claimed, progress)
                self._repack_hot(progress)
            except KeyboardInterrupt:
                with uninterrupted():
                    self._hand_back()
                raise
        if not self.remote or self.claims.state is not None:
            self._clean_up()
        return results

    def _repack_hot(self, progress=None):
        """When no batch brought every hot commit within the read bound (packs made before this run, by an
        older worker or version by version), batches of no files pack their chunks again: a pass is planned
        on what readers will choose, which the packs it adds change, so up to REPACK_PASSES passes."""
        last = None
        for _ in range(REPACK_PASSES):
            source = ChunkSource(self.repo, fetcher=remote_objects(self.repo, self.remote))
            try:
                self.batches.rescan()
                if not self.batches.repack_wanted(source.index) or self.batches.repacked == last:
                    return
                last = self.batches.repacked
                self.process([], progress, source)
            finally:
                source.close()

    def process(self, manifests: list[str], progress=None, source: ChunkSource | None = None) -> list[WorkResult]:
        """Pack the chunks of claimed manifests, commit the packs, then mark each note done or failed.
        Leases are renewed meanwhile. A failure is charged to the file it belongs to; one that belongs
        to no single file (the batch's commit, say) to every file of the batch: never is a file left
        `processing` with nothing counted."""
        own = source is None
        source = source or ChunkSource(self.repo, fetcher=remote_objects(self.repo, self.remote))
        try:
            with self._renewing(manifests):
                try:
                    results, made = self.batches.pack(manifests, source, self._held(source), progress)
                except Exception as e:   # noqa: BLE001 - whatever it was, the files are charged, not left behind
                    self.log(f"batch of {len(manifests)} file(s) failed: {note_error(e)}")
                    results = {m: WorkResult(m, False, error=note_error(e)) for m in manifests}
                    made = PackBuilder(self.repo, 0, source, [])
            self._finish(results, made, source)
        finally:
            if own:
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
                twin = twin or self.claims.twin()
                twin.renew(manifests)
            except Exception as e:   # noqa: BLE001 - a failed renewal is tried again at the next tick
                self.log(f"could not renew leases: {note_error(e)}")

        try:
            with Renewer(renew, self.claims.lease_seconds / 3):
                yield
        finally:
            if twin is not None:
                twin.repo.close()

    def _finish(self, results: dict[str, WorkResult], made: PackBuilder, source: ChunkSource):
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
        if results:
            self.claims.notes.transition(sorted(results), change, f"panini: {self.id} finished {len(results)} file(s)")
        try:
            # A pass that packs again (no files) retires what it supersedes.
            self._sync_out(made, source, retire_superseded=not results)
        except SyncError as e:
            raise SyncError(f"packed {len(results)} file(s) here but could not publish them ({e}); the next "
                            "git panini work tries again") from None

    def _sync_out(self, made: PackBuilder, source: ChunkSource, notes_changed: bool = True,
                  retire_superseded: bool = False):
        """Push the new packs (recipes, and the ref holding their data) and the notes; with them, remove what
        they and the remote's verified packs replace (_Removals: raw batches, and with retire_superseded, in
        the passes that pack again and the last one, superseded pack data refs). Then drop our own raw copies
        of what this run packed."""
        replaced = set(made.yielded)
        if self.remote:
            learn_holdings(self.repo, self.claims.state)   # the bulk refs there now, and what each holds
            removals = _Removals(self, source, made, retire_superseded)
            # Decided again on the state each push attempt fetches: this look only says whether to push.
            if made.recipes or notes_changed or removals(self.claims.state)[0]:
                try:
                    push(self.repo, self.remote, revs=[], packs=made.recipes, bulk=made.refs, decide=removals)
                except SyncError as e:
                    if not removals.retiring.refs:
                        raise
                    # A server whose hook judges otherwise (docs/server.md) never stops what else goes.
                    self.log(f"could not retire {len(removals.retiring.refs)} pack data ref(s): {e}")
                    removals = _Removals(self, source, made, False)
                    push(self.repo, self.remote, revs=[], packs=made.recipes, bulk=made.refs, decide=removals)
                removals.done_here()
        if replaced:
            LocalStore(self.repo).drop([], sorted(replaced), f"panini: {self.id} packed {len(replaced)} chunk(s)")

    def _covered(self, ref: str, verified: set[str], source: ChunkSource) -> bool:
        """Every chunk the raw batch is proven to hold (its list recomputes to its commit: a forged list
        proves nothing) is yielded by a pack this side decoded and re-hashed, whose data the remote holds or
        this push carries."""
        chunks = source.index.proven_blobs(self.remote, ref)
        for chunk in chunks:
            if chunk not in verified and not source.verify_packed(chunk, self._held(source)):
                return False
            verified.add(chunk)
        return bool(chunks)

    def _held(self, source: ChunkSource):
        """Whether a pack's data is where our results go: every blob of it proven held by the remote's
        pack data refs; without a remote, here. Never through a raw batch: a store-codec pack's data blob
        can be a chunk some raw batch also holds (one sent back by push --repair after its pack ref was
        deleted), and retiring that batch on the strength of that pack would delete the only copy."""
        index = source.index
        if self.remote:
            return lambda pack: all(index.remote_holds_blob(self.remote, b, pack_refs_only=True)
                                    for b in index.pack_blobs(pack))
        return lambda pack: all(self.repo.exists(b) for b in index.pack_blobs(pack))

    def _clean_up(self):
        """Raw copies can outlive the work (two workers each packed part of one batch; a worker killed
        between its store commit and dropping them): remove the remote's raw batches and our local raw
        chunks that a pack yields, once decoded and re-hashed here. The pack must be one the remote
        holds (proven), or without a remote one whose data is here."""
        source = ChunkSource(self.repo, fetcher=remote_objects(self.repo, self.remote))
        try:
            if self.remote:
                self._sync_out(PackBuilder(self.repo, 0, source, []), source, notes_changed=False,
                              retire_superseded=True)
            local = LocalStore(self.repo)
            held = self._held(source)
            packed = [c for c in local.chunks() if source.index.locate(c) and source.verify_packed(c, held)]
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
            twin = self.claims.twin()
            try:
                self.released = twin.release()[0]
            finally:
                twin.repo.close()
        except Exception as e:   # noqa: BLE001 - the interruption goes on; the leases lapse
            self.log(f"could not hand back leases: {note_error(e)}")


class _Removals:
    """transfer.sync.push's `decide`: on each attempt, on the remote as just fetched and proven, the raw batches
    whose every chunk a pack yields that this side decoded and re-hashed and that the remote will hold (this
    push's, verified as they were made, or one in its store), and (retiring) the pack data refs that packs
    which stay supersede (work/retire.py). Once the push landed (done_here), the retired packs are marked in
    our index (readers choose others) and our own copies of their refs deleted."""

    def __init__(self, worker: Worker, source: ChunkSource, made: PackBuilder, retiring: bool):
        self.worker, self.repo, self.remote = worker, worker.repo, worker.remote
        self.source, self.made, self.retire = source, made, retiring
        self.retiring = retire.Retirement()
        self.rewritten: dict[str, tuple[str, str]] = {}   # retired ref -> (commit, list) of the ref keeping the rest
        self._good: dict[str, bool] = {}
        self._hot: tuple[str | None, list[retire.HotRead]] | None = None

    def good(self, pack: str) -> bool:
        if pack not in self._good:
            index = self.source.index
            self._good[pack] = index.is_verified(pack) or not self.source.pack_errors(pack)
        return self._good[pack]

    def __call__(self, state) -> tuple[dict[str, str], list[str]]:
        index = self.source.index
        index.refresh()
        verified = self._readable_there(state)
        raw = {ref: oid for ref, oid in index.remote_bulk_refs(self.remote).items()
               if ref.startswith(RAW_REFS) and self.worker._covered(ref, verified, self.source)}
        if not self.retire:
            return raw, [], {}, {}
        tree = self.source.store.tree_of(self.source.store.tip())
        if self._hot is None or self._hot[0] != tree:   # what hot commits read, from the packs we know
            self._hot = tree, retire.hot_reads(self.repo, index)
        new = {ref: list(self.made.bulk) for ref in self.made.refs}
        self.retiring = retire.plan(index, self.remote, state.base_tree, self._hot[1], self.good, new,
                                    set(self.made.recipes))
        self.rewritten = {}
        if self.retiring.refs:
            kept = sorted({b for blobs in self.retiring.kept.values() for b in blobs if not self.repo.exists(b)})
            if kept and not self.source.fetch(kept):   # what a rewritten ref keeps is pushed from here
                self.retiring = retire.Retirement()
                return raw, [], {}, {}
            for ref, blobs in self.retiring.kept.items():
                self.rewritten[ref] = bulk.write_bulk(self.repo, blobs, bulk.PACK_MESSAGE)
            crash_points.reached("retire-decided")
        create = {PACK_REFS + commit: commit for commit, _ in self.rewritten.values()}
        lists = {bulk_list_path(commit): listing for commit, listing in self.rewritten.values()}
        return raw | self.retiring.refs, self.retiring.paths, create, lists

    def _readable_there(self, state) -> set[str]:
        """The chunks this push's packs yield that the remote can give once it lands: every blob they need
        (a delta's base's too) carried by it or proven there, their base in its store (a base retired since
        the packs were made leaves them unreadable)."""
        index, listing = self.source.index, TreeEditor(self.repo, state.base_tree)
        carried, made = set(self.made.bulk), set(self.made.recipes)
        out: set[str] = set()
        for pack in made:
            base = index.pack_base(pack)
            if base is not None and base not in made and listing.get(pack_path(base)) is None:
                continue
            if all(b in carried or index.remote_holds_blob(self.remote, b, pack_refs_only=True)
                   for b in index.pack_blobs(pack)):
                out.update(c for c, _ in index.pack_chunks(pack))
        return out

    def done_here(self):
        if not self.retiring.refs:
            return
        crash_points.reached("retired")
        self.source.index.mark_retired(self.retiring.packs)
        zero = "0" * self.repo.hex_len
        for ref, commit in self.retiring.refs.items():
            if self.repo.ref(ref, peel=False) != commit:
                continue
            if ref in self.rewritten:   # what stays of it stays here too
                kept = self.rewritten[ref][0]
                if self.repo.ref(PACK_REFS + kept, peel=False) is None:
                    self.repo.update_ref(PACK_REFS + kept, kept, None, "panini: what stays of a retired ref")
            self.repo.update_ref(ref, zero, commit, "panini: retired")
