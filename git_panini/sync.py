"""Moves the store and the notes between a repository and its remotes: fetch-merge, and push with retries."""

from __future__ import annotations

import random
import time

from .notes import NOTES_REF, Notes
from .repo import GitError
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
    return f"refs/panini/remotes/{remote}/{what}"


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
    try:
        repo.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *specs)
    except GitError as e:
        raise SyncError(f"fetching from '{remote}' failed: {e}") from None
    merged = {}
    for chain, name in ((Store(repo), "store"), (Notes(repo), "notes")):
        theirs = repo.ref(_tracking(remote, name))
        if chain.ref in available and theirs:
            merged[chain.ref] = chain.merge_from(theirs, f"panini: merge {name} from {remote}")
    return merged


def push(repo, remote: str, attempts: int = 8) -> dict[str, str]:
    """Push our store and notes; on a race, fetch, merge and try again with backoff."""
    for attempt in range(attempts):
        refs = [ref for ref in (STORE_REF, NOTES_REF) if repo.ref(ref)]
        if not refs:
            return {}
        proc = repo.git("push", "--quiet", "--no-verify", "--porcelain", remote,
                        *[f"{ref}:{ref}" for ref in refs], check=False)
        if proc.returncode == 0:
            return {ref: repo.ref(ref) for ref in refs}
        out = proc.stdout.decode() + proc.stderr.decode()
        if "rejected" not in out and "stale info" not in out and "failed to update" not in out.lower() \
                and "cannot lock ref" not in out:
            lines = [l for l in proc.stderr.decode().splitlines() if l.strip()]
            raise SyncError(f"pushing to '{remote}' failed: {lines[-1] if lines else 'exit ' + str(proc.returncode)}")
        fetch(repo, remote)
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")
