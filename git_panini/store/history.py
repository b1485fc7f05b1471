"""Which files the commits of the history check out: the pointers of each commit, the hot commits (what
the tips of branches and tags and their last panini.hotCommits commits reference), and from them how long
each chunk lives (the commits that need it), which is how the worker groups chunks so that a checkout
decodes what it writes (store/read_cost.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..format import pointer_scan
from ..format.manifest import Manifest, ManifestError
from ..format.pointer import Pointer
from . import manifests as manifest_store

HISTORY = ["--branches", "--tags", "--remotes"]
HOT_COMMITS_KEY = "panini.hotCommits"
DEFAULT_HOT_COMMITS = 100


def commits(repo, revs: list[str] | None = None) -> list[str]:
    """The commits of revs (default: every branch, tag and remote-tracking branch), newest first."""
    return repo.git("rev-list", *(revs or HISTORY), "--").stdout.decode().split()


def hot_commits(repo) -> list[str]:
    """Every tip (branches, tags, remote-tracking branches) and its last panini.hotCommits commits."""
    text = repo.config_get(HOT_COMMITS_KEY) or ""
    depth = int(text) if text.isdigit() else DEFAULT_HOT_COMMITS
    tips = repo.git("for-each-ref", "--format=%(objectname)^{commit}", "refs/heads", "refs/tags",
                    "refs/remotes").stdout.decode().split()
    hot: dict[str, None] = {}
    for tip in dict.fromkeys(tips):
        proc = repo.git("rev-list", f"--max-count={max(1, depth)}", tip, "--", check=False)
        hot.update(dict.fromkeys(proc.stdout.decode().split()))
    return list(hot)


def first_parents(repo, commits_: list[str]) -> dict[str, str | None]:
    """{commit: its first parent, or None for a root}."""
    if not commits_:
        return {}
    out = repo.git("rev-list", "--no-walk=unsorted", "--parents", *commits_, "--").stdout.decode().splitlines()
    return {words[0]: (words[1] if len(words) > 1 else None) for words in (line.split() for line in out) if words}


class Files:
    """The files (pointers and their manifests) commits check out, each pointer and manifest read once."""

    def __init__(self, repo):
        self.repo = repo
        self._pointers: dict = {}
        self._manifests: dict[str, Manifest | None] = {}

    def of(self, commit: str) -> tuple[list[tuple[str, Manifest]], int]:
        """([(path, manifest)] of the commit's readable git-panini files, how many others it has: a
        malformed pointer, a manifest not here or not readable)."""
        files, unreadable = [], 0
        for found in pointer_scan.in_tree(self.repo, commit, self._pointers):
            manifest = self.manifest(found.pointer) if found.pointer is not None else None
            if manifest is None:
                unreadable += 1
            else:
                files.append((found.path, manifest))
        return files, unreadable

    def manifest(self, pointer: Pointer) -> Manifest | None:
        m = pointer.manifest
        if m not in self._manifests:
            try:
                self._manifests[m] = manifest_store.load(self.repo, m, pointer.size)
            except ManifestError:
                self._manifests[m] = None
        return self._manifests[m]


@dataclass
class Lifetimes:
    lives: dict[str, frozenset]              # chunk -> indexes (in the commits scanned) of those that need it
    written: dict[int, int]                  # commit index -> the bytes its checkout writes
    where: dict[str, tuple[str, int]]        # chunk -> (path, offset) where the newest commit has it first
    sizes: dict[str, int]                    # chunk -> its size, as the manifests say


def lifetimes(repo, commits_: list[str], files: Files | None = None) -> Lifetimes:
    """Which of these commits (newest first) check out each chunk, and where."""
    files = files or Files(repo)
    lives: dict[str, set[int]] = {}
    written: dict[int, int] = {}
    where: dict[str, tuple[str, int]] = {}
    sizes: dict[str, int] = {}
    for i, commit in enumerate(commits_):
        seen_here: set[str] = set()
        written[i] = 0
        for path, manifest in files.of(commit)[0]:
            written[i] += manifest.size
            offset = 0
            for chunk, size, repeats in manifest.runs():
                if chunk not in seen_here:
                    seen_here.add(chunk)
                    lives.setdefault(chunk, set()).add(i)
                    where.setdefault(chunk, (path, offset))
                    sizes.setdefault(chunk, size)
                offset += size * repeats
    return Lifetimes({c: frozenset(s) for c, s in lives.items()}, written, where, sizes)
