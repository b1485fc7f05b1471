"""Which remote, what one fetch saw of it (what a push builds on), objects fetched from it by id, and sync errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..git.repo import first_error_line


class SyncError(Exception):
    pass


class DamagedRemote(SyncError):
    """The remote's store or notes ref points at something other than a commit (a blob, a tree, a tag):
    no push can build on it. One line naming the ref; found by the fetch at once, never retried."""


@dataclass
class RemoteState:
    remote: str
    store: str | None = None          # its store tip (a format-2 chain)
    notes: str | None = None          # its notes tip
    base_tree: str | None = None      # the store tree the next push adds to
    replace: str | None = None        # its format-1 store tip, replaced (with a lease) by the next push
    bulk: dict[str, str] = field(default_factory=dict)   # refs that replacing it must push too
    damaged: list[str] = field(default_factory=list)     # what it lost since this clone last saw it
    broken: dict[str, str] = field(default_factory=dict)   # {ref: oid} not a commit there (a repair replaces them)


@dataclass
class RemoteSurvey:
    """sync.survey(): one listing of a remote, its tips' objects here."""
    tips: dict[str, tuple[str, str]]   # its store and notes refs: {ref: (object type, id)}
    branches: dict[str, str]           # its branches and tags: {ref: id}
    bulk: dict[str, str]               # its raw batch and pack data refs: {ref: commit}


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


def fetch_objects(repo, remote: str, oids) -> None:
    """Fetch objects by id in one request. Without negotiation: blobs share no history to negotiate."""
    wanted = "".join(f"{oid}\n" for oid in sorted(set(oids)))
    if not wanted:
        return
    # The objects kept as the pack they came in (unpackLimit=1): unpacked, each chunk blob was inflated and
    # deflated again into a loose file, a third more CPU for a checkout's few large pack blobs.
    proc = repo.git("-c", "fetch.negotiationAlgorithm=noop", "-c", "fetch.unpackLimit=1", "fetch", "--quiet",
                    "--no-tags", "--no-write-fetch-head",
                    "--no-auto-gc", "--no-recurse-submodules", "--stdin", remote, input=wanted.encode(), check=False)
    if proc.returncode != 0:
        raise SyncError(f"fetching objects from '{remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")


class RemoteObjects:
    """A ChunkSource's fetcher: objects by id from one remote (store.chunk_source.ObjectFetcher)."""

    def __init__(self, repo, remote: str):
        self.repo, self.remote = repo, remote

    def __call__(self, oids: list[str]) -> bool:
        try:
            fetch_objects(self.repo, self.remote, oids)
            return True
        except SyncError:
            return False


def remote_objects(repo, remote: str | None) -> RemoteObjects | None:
    return RemoteObjects(repo, remote) if remote else None
