"""Moves the store and the notes between a repository and its remotes: fetch-merge, and push with retries."""

from __future__ import annotations

import hashlib
import random
import re
import time

from .notes import NOTES_REF, Notes
from .repo import GitError, first_error_line
from .store import STORE_REF, Store


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
        if upstream:
            return upstream
    remotes = repo.git("remote").stdout.decode().split()
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


def _tracking(remote: str, what: str) -> str:
    # A remote given as a URL (as pre-push may pass it) is no valid ref component.
    name = remote if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", remote) else \
        "url-" + hashlib.sha1(remote.encode()).hexdigest()[:16]
    return f"refs/panini/remotes/{name}/{what}"


def remote_refs(repo, remote: str) -> dict[str, str]:
    try:
        out = repo.git("ls-remote", remote, STORE_REF, NOTES_REF).stdout.decode()
    except GitError as e:
        raise SyncError(f"cannot reach remote '{remote}': {e}") from None
    return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def fetch(repo, remote: str) -> dict[str, str]:
    """Fetch the remote's store and notes and merge them into ours; return {ref: merged tip}."""
    available = remote_refs(repo, remote)
    specs = [f"+{ref}:{_tracking(remote, name)}" for ref, name in ((STORE_REF, "store"), (NOTES_REF, "notes"))
             if ref in available]
    if not specs:
        return {}
    for attempt in range(6):
        try:
            repo.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *specs)
            break
        except GitError as e:
            # Another process of this repository (a second local worker) is updating the same
            # tracking ref: its fetch is as good as ours, so wait and fetch again.
            if "cannot lock ref" not in str(e) or attempt == 5:
                raise SyncError(f"fetching from '{remote}' failed: {e}") from None
            time.sleep(0.05 * 2 ** attempt * (0.5 + random.random()))
    merged = {}
    for chain, name in ((Store(repo), "store"), (Notes(repo), "notes")):
        theirs = repo.ref(_tracking(remote, name))
        if chain.ref in available and theirs:
            _prefetch_metadata(repo, theirs, name)
            merged[chain.ref] = chain.merge_from(theirs, f"panini: merge {name} from {remote}")
    return merged


# --- partial clones (--filter=blob:none): fetch the blobs a command needs in one request -------------

def promisor_remote(repo) -> str | None:
    """The remote a partial clone fetches missing objects from; None when the repository is complete."""
    if not getattr(repo, "partial", False):
        return None
    name = repo.config_get("extensions.partialclone")
    if name:
        return name
    out = repo.git("config", "--get-regexp", r"^remote\..*\.promisor$", check=False).stdout.decode()
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lower() in ("true", "yes", "on", "1"):
            return key[len("remote."):-len(".promisor")]
    return None


def prefetch(repo, oids) -> int:
    """In a partial clone, fetch these objects in one request (git would fetch each missing blob
    lazily, one round trip apiece). Returns how many were asked for; 0 when not needed or it failed
    (reads then still fetch lazily)."""
    remote = promisor_remote(repo)
    wanted = sorted(set(oids))
    if remote is None or not wanted:
        return 0
    proc = repo.git("-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                    "--recurse-submodules=no", "--filter=blob:none", "--stdin", remote,
                    input="".join(f"{oid}\n" for oid in wanted).encode(), check=False)
    return len(wanted) if proc.returncode == 0 else 0


def _missing(repo, treeish: str) -> list[str]:
    """Objects under treeish this partial clone lacks (listed without fetching them)."""
    out = repo.git("rev-list", "--objects", "--missing=print", treeish, check=False).stdout.decode()
    return [line[1:] for line in out.splitlines() if line.startswith("?")]


def _prefetch_metadata(repo, commit: str, name: str):
    """The notes, manifests and pack recipes are small and read whole (merges, the chunk index);
    a filtered fetch leaves their blobs behind. Fetch them in one request, not one by one."""
    if promisor_remote(repo) is None:
        return
    if name == "notes":
        prefetch(repo, _missing(repo, commit))
        return
    wanted: set[str] = set()
    for top, leaf in (("manifests", None), ("packs", "recipe")):
        spec = f"{commit}:{top}"
        if repo.git("rev-parse", "--verify", "--quiet", spec, check=False).returncode != 0:
            continue
        missing = set(_missing(repo, spec))
        if leaf and missing:
            listing = repo.git("ls-tree", "-r", spec).stdout.decode().splitlines()
            missing &= {line.split()[2] for line in listing if line.endswith("/" + leaf)}
        wanted |= missing
    prefetch(repo, wanted)


def prefetch_chunks(repo, manifests: list[str], is_packed) -> int:
    """In a partial clone, fetch the raw chunks of these manifests that no pack yields, in one request."""
    if promisor_remote(repo) is None:
        return 0
    from . import manifest as manifest_mod
    wanted = []
    for manifest in manifests:
        try:
            wanted += [c for c, _ in manifest_mod.parse(repo.read_kind(manifest, "blob") or b"", repo.hex_len)
                       if not is_packed(c)]
        except manifest_mod.ManifestError:
            continue   # the worker reports it
    return prefetch(repo, wanted)


def push(repo, remote: str, attempts: int = 8) -> dict[str, str]:
    """Fetch and merge the remote's refs, then push ours with a lease on what we merged.

    The refs are snapshots (no history), so a push replaces the remote's tip: the lease makes
    that a compare-and-swap. If another writer got in first, fetch, merge and try again.
    """
    for attempt in range(attempts):
        fetch(repo, remote)
        refs = [ref for ref in (STORE_REF, NOTES_REF) if repo.ref(ref)]
        if not refs:
            return {}
        leases = []
        for ref, name in ((STORE_REF, "store"), (NOTES_REF, "notes")):
            if ref in refs:
                expected = repo.ref(_tracking(remote, name)) or ""
                leases.append(f"--force-with-lease={ref}:{expected}")
        proc = repo.git("push", "--quiet", "--no-verify", "--porcelain", "--atomic", *leases, remote,
                        *[f"{ref}:{ref}" for ref in refs], check=False)
        if proc.returncode == 0:
            for ref, name in ((STORE_REF, "store"), (NOTES_REF, "notes")):
                if ref in refs:  # the remote now holds our tip: remember it for the next lease
                    repo.git("update-ref", _tracking(remote, name), repo.ref(ref), check=False)
            return {ref: repo.ref(ref) for ref in refs}
        out = proc.stdout.decode() + proc.stderr.decode()
        if not any(s in out for s in ("stale info", "rejected", "cannot lock ref", "failed to update", "atomic")):
            raise SyncError(f"pushing to '{remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")
