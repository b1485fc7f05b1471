"""git-lfs: the patterns its .gitattributes lines track, and its objects in .git/lfs/objects (its pointers:
format/lfs_pointer)."""

from __future__ import annotations

import os
import shutil
import subprocess

from .attributes import split_attribute_lines
from .blobs import BlobReader, files_in_history
from .errors import MigrateError

LFS_ATTRS = {"filter=lfs", "diff=lfs", "merge=lfs", "-text"}


def is_lfs_line(fields: list[str]) -> bool:
    """A .gitattributes line (split) that routes its pattern through git-lfs."""
    return len(fields) > 1 and "filter=lfs" in fields[1:]


def drop_lfs_lines(lines: list[str], patterns: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The lines less git-lfs's lines for these patterns, and per pattern what else its dropped line said
    (`lockable`), for the line that replaces it to keep."""
    kept, extras = [], {}
    for line in lines:
        fields = line.split()
        if fields and fields[0] in patterns and is_lfs_line(fields):
            more = extras.setdefault(fields[0], [])
            more += [a for a in fields[1:] if a not in LFS_ATTRS and a not in more]
        else:
            kept.append(line)
    return kept, extras


def top_level_pattern(pattern: str, folder: str) -> str:
    """A pattern of `folder/.gitattributes` as the top-level .gitattributes writes it: one without a slash
    matches at every depth below the folder, one with a slash is anchored at the folder."""
    if not folder:
        return pattern
    if "/" not in pattern.rstrip("/"):
        return f"{folder}/**/{pattern}"
    return f"{folder}/{pattern.lstrip('/')}"


def lfs_patterns(repo, names: list[str]) -> list[str]:
    """Every pattern git-lfs tracks in any .gitattributes (top-level or nested) of the refs' history, in
    the order first met, as top-level patterns."""
    found: dict[str, None] = {}
    blobs = BlobReader(repo)
    try:
        for oid, path in files_in_history(repo, names, ".gitattributes", ":(glob)**/.gitattributes"):
            folder = path[:-len(".gitattributes")].rstrip("/")
            for line in split_attribute_lines(blobs.read(oid).decode("utf-8", "surrogateescape")):
                fields = line.split()
                if is_lfs_line(fields):
                    found.setdefault(top_level_pattern(fields[0], folder))
    finally:
        blobs.close()
    return list(found)


class LfsObjects:
    """git-lfs's objects in .git/lfs/objects; the first one missing runs `git lfs fetch --all` once."""

    def __init__(self, repo):
        self.repo = repo
        self.root = os.path.join(repo.common_dir, "lfs", "objects")
        self.fetched = False       # `git lfs fetch --all` ran (and brought what the remote had)
        self._why = None           # why a fetch could not bring what is missing

    def path(self, sha256: str, path: str) -> str:
        """The object's file; a MigrateError in one line when neither here nor fetched."""
        stored = os.path.join(self.root, sha256[:2], sha256[2:4], sha256)
        if not os.path.isfile(stored) and self._why is None and not self.fetched:
            self._fetch()
        if not os.path.isfile(stored):
            raise MigrateError(f"{path}: git-lfs object {sha256} is not in .git/lfs/objects and "
                               f"{self._why or 'git lfs fetch --all did not bring it (does the remote have it?)'}")
        return stored

    def _fetch(self):
        if shutil.which("git-lfs") is None:
            self._why = "git-lfs is not installed to fetch it (install it, then run: git lfs fetch --all)"
            return
        proc = subprocess.run(["git", "lfs", "fetch", "--all"], cwd=self.repo.work_tree or self.repo.git_dir,
                              capture_output=True)
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
            self._why = f"git lfs fetch --all failed: {lines[-1].strip()}"
            return
        self.fetched = True
