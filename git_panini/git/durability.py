"""What is fsynced before a ref or a pointer may name it: Git's own core.fsync / core.fsyncObjectFiles rules.

Git (2.36+) fsyncs by component; by default packs, their indexes and the commit-graph, but not loose
objects. git-panini writes packs, loose objects (trees, commits), its journal and WAL, and follows the same
settings, so a user who asks Git for more (core.fsync=all) or less (none) gets it from git-panini too:

    loose-object   loose objects (also core.fsyncObjectFiles=true)
    pack           pack files, and the pack directory once a pack lands there
    pack-metadata  pack indexes
    index          the clean filter's journal and write-ahead log (they play the part of the index for the data a pointer names)
"""

from __future__ import annotations

import os

_GROUPS = {
    "objects": {"loose-object", "pack"},
    "derived-metadata": {"pack-metadata", "commit-graph"},
    "committed": {"loose-object", "pack", "reference"},
    "added": {"loose-object", "pack", "reference", "index"},
    "all": {"loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference"},
}
COMPONENTS = _GROUPS["all"]
GIT_DEFAULT = frozenset({"pack", "pack-metadata", "commit-graph"})


def _expand(name: str) -> set[str]:
    return _GROUPS.get(name, {name} if name in COMPONENTS else set())


def parse_components(value: str | None, object_files: bool | None = None) -> frozenset[str]:
    """The components a core.fsync value selects, as Git parses it: the default set, plus names,
    minus '-names'; 'none' clears what came before. Unknown names are ignored (Git warns)."""
    current = set(GIT_DEFAULT)
    added, removed = set(), set()
    for word in (value or "").split(","):
        word = word.strip()
        if word == "none":
            current, added, removed = set(), set(), set()
        elif word.startswith("-"):
            removed |= _expand(word[1:])
        elif word:
            added |= _expand(word)
    chosen = (current - removed) | added
    if object_files:
        chosen.add("loose-object")
    return frozenset(chosen)


class FsyncPolicy:
    def __init__(self, components: frozenset[str]):
        self.components = components

    @classmethod
    def from_repo(cls, repo) -> "FsyncPolicy":
        object_files = repo.config_get("core.fsyncObjectFiles")
        return cls(parse_components(repo.config_get("core.fsync"),
                                    object_files is not None and object_files.lower() in ("true", "yes", "on", "1")))

    def wants(self, component: str) -> bool:
        return component in self.components


def sync_all(paths: list[str], directory: str):
    """Make these files of one directory and their names durable: one syncfs() of the filesystem when
    there are many (Linux: a single flush instead of one per file, as Git's core.fsyncMethod=batch
    aims for), else an fsync of each file and of the directory."""
    if not paths:
        return
    if len(paths) > SYNCFS_FROM and _syncfs(directory):
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(directory)


SYNCFS_FROM = 8


def _syncfs(directory: str) -> bool:
    try:
        import ctypes
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(directory, os.O_RDONLY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def fsync_dir(path: str):
    """Make the names just created in a directory durable (a renamed file is not, until its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
