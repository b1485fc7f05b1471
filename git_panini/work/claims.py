"""The notes queue as one worker works it: claims, lease renewals and releases, each published to the
remote by a compare-and-swap of the notes."""

from __future__ import annotations

import os
import random
import socket
import time
from datetime import datetime, timedelta, timezone

from ..git.repo import Repo
from ..git.tree_edit import TreeEditor
from ..store.notes import STATE_RANK, Notes
from ..store.shared import manifest_path
from ..transfer.publish import prepare, publish_local
from ..transfer.sync import SyncError, fetch, learn_holdings, push_once
from .lease import CLOCK_SKEW_SECONDS, held_here, holder, holder_alive, iso, lapsed, released

LEASE_SECONDS = 900
MAX_ATTEMPTS = 3
CLAIM_ATTEMPTS = 8          # compare-and-swap rounds of a claim against other workers
BATCH_FILES = 256          # files claimed at once, so small files can share solid segments
BATCH_BYTES = 8 << 20      # ... but not so many bytes that one worker takes the whole backlog


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


class Claims:
    """The queue in the notes, as worker `id` takes from it and hands back to it. Every change fetches
    the remote first (`state`, `remote_store`: the remote and its store as the last fetch saw them)."""

    def __init__(self, repo, remote: str | None = None, worker_id: str | None = None,
                 lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS,
                 skew: float = CLOCK_SKEW_SECONDS, log=None):
        self.repo = repo
        self.remote = remote
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.skew = skew
        self.log = log or (lambda message: None)
        self.notes = Notes(repo)
        self.state = None          # the remote as the last fetch saw it
        self.remote_store: TreeEditor | None = None   # its store as fetched

    def twin(self) -> "Claims":
        """These claims on a repository handle (and remote state) of their own, for another thread, or
        for after an interruption (a Ctrl-C also stops the git processes our handle reads through)."""
        repo = Repo(self.repo.work_tree or self.repo.git_dir)
        return Claims(repo, self.remote, self.id, self.lease_seconds, self.max_attempts, self.skew, self.log)

    def _sync_in(self, publish: bool = True):
        if self.remote:
            self.state = fetch(self.repo, self.remote)
            learn_holdings(self.repo, self.state)
            # The remote's store as fetched, opened once: asked per chunk in the hot path.
            self.remote_store = TreeEditor(self.repo, self.state.base_tree)
        elif publish:   # no remote to publish through: committed files are work as they are
            publish_local(self.repo)

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

            commit, written = self.notes.rewrite(self.state.notes, manifests, recorded, message)
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
            notes = self.notes.all(self.state.notes) if self.state.notes else {}
            if job is not None:   # a dispatcher of this repository queued the job here (published later)
                notes |= {m: n for m, n in self.notes.all().items() if n.get("status") == "queued" and n.get("job") == job}
        else:
            notes = self.notes.all()
        # With a remote, only its files: a pack of anything else would carry that file's bytes there.
        published = self.remote_store if self.remote else None
        # Small files first: they batch into shared segments, and finish quickly.
        pool = sorted((m for m, n in notes.items() if claimable(n, at, self.max_attempts, job, self.skew)
                       and (job is None or n.get("job") == job)
                       and (published is None or published.get(manifest_path(m)) is not None)),
                      key=lambda m: (notes[m].get("bytes") or 0, m))
        lease = iso(at + timedelta(seconds=self.lease_seconds))
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
        out = prepare(self.repo, self.state, [])
        out.notes = commit   # ours alone: not the other notes of our (shared) ref that prepare would add
        try:
            return push_once(self.repo, self.state, out) is not None
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
            until = iso(datetime.now(timezone.utc) + timedelta(seconds=self.lease_seconds))
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


def _later(note: dict, than: dict) -> bool:
    """`note` wins the notes merge over `than` (a higher state, or the same one updated later)."""
    return ((STATE_RANK.get(note.get("status"), -1), str(note.get("updated", "")))
            > (STATE_RANK.get(than.get("status"), -1), str(than.get("updated", ""))))
