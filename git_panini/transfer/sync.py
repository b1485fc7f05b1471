"""Moves the store and the notes between a repository and its remotes: fetch-merge, fetch by id, and push.

- fetch: one `git fetch` of the remote's store and notes tips into refs private to this process,
  so the tips merged are exactly the ones fetched (a sibling process cannot swap them), then a
  validated merge into ours. Both refs are chains, so only what is new moves.
- fetch_objects: blobs by id (pack data, raw chunks), all of a checkout's in one request.
- push: publish what the pushed commits need (publish.py), then one atomic push of the store,
  the notes and the bulk refs. The store and notes are pushed without force: the remote accepts
  them only if they descend from the tips we merged, so a writer that got in first makes us
  fetch, merge and try again, and nobody's entries are ever overwritten.
"""

from __future__ import annotations

import os
import random
import time
import uuid

from ..git.repo import GitError, ObjectTooLarge, first_error_line
from ..store.chunk_index import ChunkIndex
from ..store.legacy.format1 import convert, is_v1, upgrade_local
from ..store.notes import NOTES_REF, Notes
from ..store.shared import RAW_REFS, STORE_REF, Store
from .publish import Outgoing, prepare
from .remote import RemoteState, SyncError


def private_prefix() -> str:
    return f"refs/panini/fetch/{os.getpid()}-{uuid.uuid4().hex[:8]}/"


def fetch(repo, remote: str) -> RemoteState:
    """Fetch the remote's store and notes, merge them into ours; return them as fetched."""
    upgrade_local(repo)
    prefix = private_prefix()
    # Glob refspecs: a ref the remote lacks is simply not fetched (a plain refspec would fail).
    specs = [f"+refs/panini/stor*:{prefix}stor*", f"+refs/notes/panin*:{prefix}panin*"]
    # Negotiate with our own store and notes tips only (what the remote's chains may share with us):
    # the branches have nothing in common with them and would cost round trips. With neither (a
    # fresh clone) there is nothing to negotiate at all.
    ours = [ref for ref in (STORE_REF, NOTES_REF) if repo.ref(ref)]
    negotiation = [f"--negotiation-tip={ref}" for ref in ours]
    config = [] if ours else ["-c", "fetch.negotiationAlgorithm=noop"]
    for attempt in range(6):
        proc = repo.git(*config, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc",
                        "--no-recurse-submodules", *negotiation, remote, *specs, check=False)
        if proc.returncode == 0:
            break
        message = first_error_line(proc.stderr, proc.returncode)
        if "cannot lock ref" not in message or attempt == 5:
            drop_private(repo, prefix)
            raise SyncError(f"fetching from '{remote}' failed: {message}")
        time.sleep(0.05 * 2 ** attempt * (0.5 + random.random()))
    state = RemoteState(remote, repo.ref(prefix + "store"), repo.ref(prefix + "panini"))
    try:
        store, notes = Store(repo), Notes(repo)
        if state.store and is_v1(repo, state.store):
            # A format-1 snapshot: converted, merged into ours, and replaced on the remote by the next push.
            state.replace, state.store = state.store, None
            state.base_tree, state.bulk = convert(repo, state.replace)
            store.absorb(state.base_tree, f"panini: convert the format-1 store of {remote}")
        elif state.store:
            store.merge_from(state.store, f"panini: merge store from {remote}")
            state.base_tree = store.tree_of(state.store)
        if state.notes:
            notes.merge_from(state.notes, f"panini: merge notes from {remote}")
        index = ChunkIndex(store)
        try:
            index.refresh()
            index.sync_remote(remote, state.store)
        finally:
            index.close()
    except ObjectTooLarge as e:
        raise SyncError(f"the store of '{remote}' holds what no git-panini writes: {e}") from None
    finally:
        drop_private(repo, prefix)
    return state


def drop_private(repo, prefix: str):
    refs = repo.git("for-each-ref", "--format=%(refname)", prefix, check=False).stdout.decode().split()
    if refs:
        repo.git("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs).encode(), check=False)


def remote_refs(repo, remote: str, prefix: str) -> dict[str, str]:
    try:
        out = repo.git("ls-remote", remote, prefix + "*").stdout.decode()
    except GitError as e:
        raise SyncError(f"cannot reach remote '{remote}': {e}") from None
    return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def push(repo, remote: str, revs: list[str] | None = None, packs: list[str] = (), bulk: dict[str, str] | None = None,
         delete: dict[str, str] | None = None, attempts: int = 8) -> dict[str, str]:
    """Publish what `revs` reference (default: HEAD's commits the remote's branches lack) and push it;
    on a lost race fetch, merge and try again. packs / bulk: a worker's new pack recipes and the
    refs holding their data; delete: {ref: expected oid} of raw batches they replace.
    Returns {ref: oid} pushed."""
    if revs is None:
        revs = ["HEAD", "--not", f"--remotes={remote}"] if repo.ref("HEAD") else []
    for attempt in range(attempts):
        state = fetch(repo, remote)
        try:
            out = prepare(repo, state, revs, packs)
        except ObjectTooLarge as e:   # a fan directory of the remote's store that no store writes, where ours go
            raise SyncError(f"the store of '{remote}' holds what no git-panini writes: {e}") from None
        pushed = push_once(repo, state, out, bulk, delete)
        if pushed is not None:
            return pushed
        if delete:
            # Maybe another worker removed those raw batches first: only delete what is still there.
            there = remote_refs(repo, remote, RAW_REFS)
            delete = {ref: oid for ref, oid in delete.items() if there.get(ref) == oid}
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")


def push_once(repo, state: RemoteState, out: Outgoing, bulk: dict[str, str] | None = None,
              delete: dict[str, str] | None = None) -> dict[str, str] | None:
    """One atomic push of the remote's next store and notes commits (children of its tips as fetched,
    so the push is a compare-and-swap on them), a new raw batch, and `bulk` refs. None when the remote
    moved since the fetch (a non-fast-forward or a stale lease)."""
    refs = dict(bulk or {}) | state.bulk
    if out.raw_batch:
        refs[RAW_REFS + out.raw_batch] = out.raw_batch
    updates = {STORE_REF: out.store, NOTES_REF: out.notes}
    updates = {ref: oid for ref, oid in updates.items() if oid} | refs
    if not updates and not delete:
        return {}
    leases = [f"--force-with-lease={ref}:{oid}" for ref, oid in (delete or {}).items()]
    if state.replace:
        leases.append(f"--force-with-lease={STORE_REF}:{state.replace}")
    specs = [f"{oid}:{ref}" for ref, oid in updates.items()] + [f":{ref}" for ref in delete or {}]
    proc = repo.git("push", "--quiet", "--no-verify", "--porcelain", "--atomic", *leases, state.remote, *specs,
                    check=False)
    if proc.returncode != 0:
        out_text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if any(s in out_text for s in ("stale info", "rejected", "non-fast-forward", "fetch first", "cannot lock ref",
                                       "failed to update", "atomic")):
            return None
        raise SyncError(f"pushing to '{state.remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")
    _pushed(repo, state, out)
    return updates


def _pushed(repo, state: RemoteState, out: Outgoing):
    """The remote now holds what we pushed: ours merges it (so the next fetch negotiates from it), and
    the index learns what the remote holds."""
    store = Store(repo)
    if out.store:
        store.merge_from(out.store, f"panini: pushed to {state.remote}")
    if out.notes:
        Notes(repo).merge_from(out.notes, f"panini: pushed to {state.remote}")
    index = ChunkIndex(store)
    try:
        index.refresh()
        index.sync_remote(state.remote, out.store or state.store)
    finally:
        index.close()
