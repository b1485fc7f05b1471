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

from .index import ChunkIndex
from .notes import NOTES_REF, Notes
from .repo import GitError, first_error_line
from .store import PACK_REFS, RAW_REFS, STORE_REF, Store
from .upgrade import convert, is_v1, upgrade_local


class SyncError(Exception):
    pass


def default_remote(repo) -> str | None:
    """panini.remote, else the current branch's remote, else 'origin', else the only remote."""
    configured = repo.config_get("panini.remote")
    if configured:
        return configured
    branch = repo.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.decode().strip()
    if branch:
        upstream = repo.config_get(f"branch.{branch}.remote")
        if upstream and upstream != ".":
            return upstream
    remotes = repo.git("remote").stdout.decode().split()
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


def _private_prefix() -> str:
    return f"refs/panini/fetch/{os.getpid()}-{uuid.uuid4().hex[:8]}/"


REPLACE_V1 = "replace-v1"   # in fetch()'s result: a format-1 store tip the next push must replace


def fetch(repo, remote: str) -> dict[str, str | None]:
    """Fetch the remote's store and notes, merge them into ours; return the remote's tips as fetched
    (and, under REPLACE_V1, the remote's format-1 store tip that was converted instead of merged)."""
    upgrade_local(repo)
    prefix = _private_prefix()
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
            _drop_private(repo, prefix)
            raise SyncError(f"fetching from '{remote}' failed: {message}")
        time.sleep(0.05 * 2 ** attempt * (0.5 + random.random()))
    tips = {STORE_REF: repo.ref(prefix + "store"), NOTES_REF: repo.ref(prefix + "panini")}
    try:
        store, notes = Store(repo), Notes(repo)
        if tips[STORE_REF] and is_v1(repo, tips[STORE_REF]):
            tips[REPLACE_V1] = tips[STORE_REF]
            store.absorb(convert(repo, tips[STORE_REF]), f"panini: convert the format-1 store of {remote}")
            tips[STORE_REF] = None   # as far as publishing goes, the remote holds no format-2 store yet
        elif tips[STORE_REF]:
            store.merge_from(tips[STORE_REF], f"panini: merge store from {remote}")
        if tips[NOTES_REF]:
            notes.merge_from(tips[NOTES_REF], f"panini: merge notes from {remote}")
        index = ChunkIndex(store)
        try:
            index.refresh()
            index.sync_remote(remote, tips[STORE_REF])
        finally:
            index.close()
    finally:
        _drop_private(repo, prefix)
    return tips


def _drop_private(repo, prefix: str):
    refs = repo.git("for-each-ref", "--format=%(refname)", prefix, check=False).stdout.decode().split()
    if refs:
        repo.git("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs).encode(), check=False)


def fetch_objects(repo, remote: str, oids) -> None:
    """Fetch objects by id in one request. Without negotiation: blobs share no history to negotiate."""
    wanted = "".join(f"{oid}\n" for oid in sorted(set(oids)))
    if not wanted:
        return
    proc = repo.git("-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                    "--no-auto-gc", "--no-recurse-submodules", "--stdin", remote, input=wanted.encode(), check=False)
    if proc.returncode != 0:
        raise SyncError(f"fetching objects from '{remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")


def local_refs(repo, prefix: str) -> dict[str, str]:
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", prefix, check=False).stdout.decode()
    return {ref: oid for oid, _, ref in (line.partition(" ") for line in out.splitlines())}


def remote_refs(repo, remote: str, prefix: str) -> dict[str, str]:
    try:
        out = repo.git("ls-remote", remote, prefix + "*").stdout.decode()
    except GitError as e:
        raise SyncError(f"cannot reach remote '{remote}': {e}") from None
    return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def push(repo, remote: str, revs: list[str] | None = None, delete: dict[str, str] | None = None,
         attempts: int = 8) -> dict[str, str]:
    """Publish what `revs` reference (default: HEAD's commits the remote's branches lack), then push
    the store, notes and bulk refs atomically; on a lost race fetch, merge and try again.

    delete: {ref: expected oid} of raw batches to remove on the remote in the same push (a worker
    whose verified packs replace them). Returns {ref: oid} pushed.
    """
    from .publish import publish
    if revs is None:
        revs = ["HEAD", "--not", f"--remotes={remote}"] if repo.ref("HEAD") else []
    for attempt in range(attempts):
        tips = fetch(repo, remote)
        publish(repo, remote, tips[STORE_REF], revs)
        pushed = push_once(repo, remote, delete=delete, replace_store=tips.get(REPLACE_V1))
        if pushed is not None:
            return pushed
        if delete:
            # Maybe another worker removed those raw batches first: only delete what is still there.
            there = remote_refs(repo, remote, RAW_REFS)
            delete = {ref: oid for ref, oid in delete.items() if there.get(ref) == oid}
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")


def push_once(repo, remote: str, notes_tip: str | None = None, delete: dict[str, str] | None = None,
              replace_store: str | None = None) -> dict[str, str] | None:
    """One atomic push of our store and notes tips (notes_tip: this exact notes commit instead) and
    bulk refs. None when the remote moved since we merged (a non-fast-forward or a stale lease).
    replace_store: the remote's format-1 store tip, replaced (only if still there) by our chain."""
    tips = {STORE_REF: repo.ref(STORE_REF), NOTES_REF: notes_tip or repo.ref(NOTES_REF)}
    tips = {ref: oid for ref, oid in tips.items() if oid}
    bulk = local_refs(repo, RAW_REFS) | local_refs(repo, PACK_REFS)
    if not tips and not bulk:
        return {}
    leases = [f"--force-with-lease={ref}:{oid}" for ref, oid in (delete or {}).items()]
    if replace_store:
        leases.append(f"--force-with-lease={STORE_REF}:{replace_store}")
    specs = ([f"{oid}:{ref}" for ref, oid in tips.items()] + [f"{ref}:{ref}" for ref in bulk]
             + [f":{ref}" for ref in delete or {}])
    proc = repo.git("push", "--quiet", "--no-verify", "--porcelain", "--atomic", *leases, remote, *specs, check=False)
    if proc.returncode != 0:
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if any(s in out for s in ("stale info", "rejected", "non-fast-forward", "fetch first", "cannot lock ref",
                                  "failed to update", "atomic")):
            return None
        raise SyncError(f"pushing to '{remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")
    _pushed(repo, remote, tips.get(STORE_REF), bulk)
    return tips | bulk


def _pushed(repo, remote: str, store_tip: str | None, bulk: dict[str, str]):
    """The remote now holds our store tip: index what it holds; local raw batch refs have done their job
    (their chunks stay reachable here from refs/panini/local)."""
    index = ChunkIndex(Store(repo))
    try:
        index.refresh()
        index.sync_remote(remote, store_tip)
    finally:
        index.close()
    raw = [ref for ref in bulk if ref.startswith(RAW_REFS)]
    if raw:
        repo.git("update-ref", "--stdin", input="".join(f"delete {r} {bulk[r]}\n" for r in raw).encode(), check=False)
