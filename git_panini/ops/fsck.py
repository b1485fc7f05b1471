"""Consistency of the store by reachability: what `git gc --prune=now` would keep is all that counts.

A local file (refs/panini/local lists its manifest) is intact when every chunk is reachable from a
ref under refs/panini/, raw or through a pack whose recipe the store lists and whose data is
reachable here, or is held by a remote (one of its manifests lists it). A published file that is
not local is the remote's to hold: `verify` reads those.
"""

from __future__ import annotations

from ..format import pointer_scan as pointers
from ..format.manifest import ManifestError
from ..gitio import unavailable
from ..store import manifests as manifest_store
from ..store.chunk_index import ChunkIndex
from ..store.chunk_source import ChunkSource, ReadError, read_manifest
from ..store.local import LocalStore
from ..store.notes import Notes
from ..store.read_cache import CACHE_REF
from ..store.shared import Store, StoreError, malformed_entries
from ..util.units import shown

MAX_NAMED = 20   # malformed store entries named one per line; the rest are counted


def reachable_objects(repo) -> set[str]:
    """Every object a ref under refs/panini/ reaches (our private fetch refs excepted, and the read cache:
    it evicts as it likes, so what only it keeps is no store for a file)."""
    refs = repo.git("for-each-ref", "--format=%(refname)", "refs/panini/").stdout.decode().split()
    refs = [r for r in refs if not r.startswith("refs/panini/fetch/") and r != CACHE_REF]
    if not refs:
        return set()
    out = repo.git("rev-list", "--objects", "--no-object-names", *refs).stdout.decode()
    return set(out.split())


def _fetch_if_unknown(repo, head) -> str | None:
    """A clone's checkout reads the remote's store without keeping it: when HEAD names manifests no store
    here lists, fetch the remote's store once, so they are judged against what the remote holds. Returns a
    warning when the remote cannot be reached."""
    from ..transfer.remote import SyncError, default_remote
    from ..transfer.sync import fetch
    remote = default_remote(repo)
    if remote is None or repo.bare:
        return None
    store, local = Store(repo), LocalStore(repo)
    known = (set(store.manifests()) if store.tip() else set()) | (set(local.manifests()) if local.tip() else set())
    if all(f.pointer.manifest in known for f in head):
        return None
    try:
        fetch(repo, remote)
    except SyncError as e:
        return f"could not fetch the store of {remote} to check HEAD's files against it: {e}"
    return None


def check_store(repo, full: bool = False) -> dict:
    head = [] if repo.bare else [f for f in pointers.in_tree(repo, "HEAD") if f.pointer]
    unreachable = _fetch_if_unknown(repo, head)
    store, local = Store(repo), LocalStore(repo)
    errors, warnings = [], [unreachable] if unreachable else []
    counts = {"manifests": 0, "local_manifests": 0, "raw_chunks": 0, "packs": 0, "notes": 0}
    for chain in (store, local):
        tip = chain.tip()
        if tip is not None and chain.tree_of(tip) is None:
            errors.append(f"{chain.ref} points at {tip}, which is not a readable commit")
    if store.tip() is None and local.tip() is None:
        warnings.append("there is no store yet (nothing added, or not fetched)")
    try:
        store.params()
    except StoreError as e:
        errors.append(str(e))
    reachable = reachable_objects(repo)
    index = ChunkIndex(store)
    source = ChunkSource(repo)
    try:
        index.refresh()
        packs = [e.name for e in _packs(store)]
        counts["packs"] = len(packs)
        for pack, reason in index.db.execute("select pack, reason from unreadable"):
            errors.append(f"pack {pack}: {reason}")
        warnings += _malformed(repo, store)
        published = set(store.manifests()) if store.tip() else set()
        counts["manifests"] = len(published)
        local_manifests = local.manifests() if local.tip() else []
        counts["local_manifests"] = len(local_manifests)
        counts["raw_chunks"] = len(local.chunks()) if local.tip() else 0
        for manifest in local_manifests:
            problem = _unreachable_chunk(repo, index, reachable, manifest)
            if problem is None:
                continue
            if manifest in published:
                warnings.append(f"manifest {manifest}: {problem}; the remote holds it (published)")
            else:
                errors.append(f"manifest {manifest}: {problem}, and it was never pushed")
        if full:
            for pack in packs:
                blobs = index.pack_blobs(pack)
                if blobs and all(b in reachable for b in blobs):
                    errors += source.pack_errors(pack)
    finally:
        source.close()
        index.close()
    if not repo.bare:
        known = published | set(local_manifests)
        remotes = repo.git("remote").stdout.split()   # with none, data not here can be nowhere else
        not_here = []
        source = ChunkSource(repo)
        try:
            for found in head:
                if found.pointer.manifest not in known and (repo.exists(found.pointer.manifest) or not remotes):
                    errors.append(f"{found.path} (HEAD): manifest {found.pointer.manifest} is in neither the local "
                                  "nor the published store; gc would delete its data, or did (re-add the file, or "
                                  "fetch it)")
                elif found.pointer.manifest not in known or _lacks_data(source, found, errors):
                    not_here.append(found.path)
        finally:
            source.close()
        counts["head_files"], counts["head_files_not_here"] = len(head), len(not_here)
        left = unavailable.current(repo)
        counts["missing"] = len(left)
        for path, (_, reason) in sorted(left.items()):
            errors.append(f"{shown(path)}: missing, left as its pointer text by a checkout ({reason}); "
                          "git panini checkout tries again")
        if not_here:
            # A lazy clone's normal state, but never "all present": say which and how to get them.
            warnings.append(f"{len(not_here)} of {len(head)} file(s) in HEAD have no data here, e.g. {not_here[0]}: "
                            "only on the remote, or the store was never fetched (git panini pull downloads them)")
    notes = Notes(repo).all()
    counts["notes"] = len(notes)
    for manifest in notes:
        if manifest not in published:
            warnings.append(f"note for {manifest}, which the store does not list")
    return {"ok": not errors, "store": store.tip(), "local": local.tip(), "errors": errors,
            "warnings": warnings, "counts": counts}


def _malformed(repo, store) -> list[str]:
    """One line per entry of our store that no git-panini writes (merged from a remote: every reader skips
    them, quarantined), at most MAX_NAMED of them; a remote's own: `fsck --remote`."""
    lines = [f"the store holds a malformed entry, ignored: {path}"
             for path in malformed_entries(repo, store.tree_of(store.tip()))]
    if len(lines) > MAX_NAMED:
        lines = lines[:MAX_NAMED] + [f"and {len(lines) - MAX_NAMED} more malformed store entries, ignored"]
    return lines


def check_remote_refs(repo, remote: str, tips: dict[str, tuple[str, str]] | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) about a remote's store and notes refs (transfer.sync.inspect_remote)."""
    from ..transfer.remote import SyncError
    from ..transfer.sync import inspect_remote
    try:
        errors, warnings = inspect_remote(repo, remote, tips)
    except SyncError as e:
        return [str(e)], []
    if len(warnings) > MAX_NAMED:
        warnings = warnings[:MAX_NAMED] + [f"and {len(warnings) - MAX_NAMED} more malformed entries, ignored"]
    return errors, warnings


def _lacks_data(source, found, errors: list[str]) -> bool:
    """Whether a HEAD file's chunks are not all here; a manifest that is here but does not describe the
    pointer's file (its sizes do not add up, it does not parse) is an error, not missing data."""
    try:
        chunks = read_manifest(source.repo, found.pointer)
    except ReadError as e:
        if not source.repo.exists(found.pointer.manifest):
            return True
        errors.append(f"{found.path} (HEAD): {e}")
        return False
    return any(not source.has(c) for c in chunks.chunks)


def _packs(store):
    from ..store.shared import leaves
    return leaves(store.repo, store.tree_of(store.tip()), "packs", name_is_oid=True)


def _unreachable_chunk(repo, index, reachable: set[str], manifest: str) -> str | None:
    """Why gc would leave this manifest unreadable here, or None."""
    if manifest not in reachable:
        return "its manifest blob is not reachable from refs/panini/"
    try:
        chunks = manifest_store.load(repo, manifest)
    except ManifestError as e:
        return f"unreadable manifest ({e})"
    # Held: reachable here, raw or through a pack whose data is reachable here, or held by a remote
    # (a remote's manifest lists it: a lazy clone, or a raw copy dropped once a pack on it yields it).
    lost = [c for c in (chunks.chunks if chunks else []) if c not in reachable and not index.on_some_remote(c) and not any(
        all(b in reachable for b in index.pack_blobs(p)) for p, _, _, _ in index.locate(c))]
    if lost:
        return f"{len(lost)} chunk(s) are neither reachable here (raw or through a pack) nor on a remote (first {lost[0]})"
    return None
