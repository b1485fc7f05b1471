"""Pointers left in the working tree (skip-smudge clones, fetchexclude) become real files again."""

from __future__ import annotations

import os
import sys

from ..format import pointer_scan as pointers
from ..format.pointer import MAX_POINTER_SIZE
from ..store.chunk_source import ChunkSource
from ..transfer.remote import default_remote, remote_objects
from ..transfer.sync import fetch
from ..util.pathfilter import PathFilter


def pointer_files(repo, paths: PathFilter) -> list[pointers.FoundPointer]:
    """HEAD's tracked files whose working-tree copy is still the pointer text (never a user's edit), or
    absent (a smudge failed there: checking it out again is right)."""
    return [f for f in pointers.in_tree(repo, "HEAD")
            if f.pointer is not None and paths.matches(f.path) and holds_pointer_text(repo, f) is not False]


def holds_pointer_text(repo, found: pointers.FoundPointer) -> bool | None:
    """Whether the file's working-tree copy is its pointer text rather than its data (a clone made without
    the filter, a failed smudge); None when there is no such file."""
    full = os.path.join(repo.work_tree, found.path)
    try:
        if os.path.getsize(full) > MAX_POINTER_SIZE:
            return False
        with open(full, "rb") as fh:
            return fh.read() == found.pointer.encode()
    except (FileNotFoundError, NotADirectoryError):
        return None


def fetch_missing(repo, source: ChunkSource, manifests: list[str]) -> int:
    """If these files lack data here: the store from source.remote, then every blob they need in one
    request. Returns how many objects were asked for (0: all here, or no remote)."""
    if source.remote is None or not source.wanted(manifests):
        return 0
    fetch(repo, source.remote)
    source.refresh()
    return source.prefetch(manifests)


def fetch_data(repo, files: list[pointers.FoundPointer], remote: str | None = None) -> int:
    source = ChunkSource(repo, fetcher=remote_objects(repo, remote or default_remote(repo)))
    try:
        return fetch_missing(repo, source, [f.pointer.manifest for f in files])
    finally:
        source.close()


def check_out(repo, files: list[pointers.FoundPointer]) -> None:
    """Let Git run the smudge filter on exactly these paths (literal pathspecs, from a file). Each file
    is still the pointer text (pointer_files checked), so removing it first loses nothing, and makes
    Git write it: a file whose stat matches the index would be left alone."""
    if not files:
        return
    for f in files:
        try:
            os.remove(os.path.join(repo.work_tree, f.path))
        except FileNotFoundError:
            pass
    env = {k: v for k, v in os.environ.items() if k != "GIT_PANINI_SKIP_SMUDGE"}
    proc = repo.git("-c", "panini.fetchinclude=", "-c", "panini.fetchexclude=", "--literal-pathspecs",
                    "checkout", "--pathspec-from-file=-", "--pathspec-file-nul",
                    input=b"".join(f.path.encode("utf-8", "surrogateescape") + b"\0" for f in files), env=env)
    # The filter's own lines (a file left as its pointer text, and why) are for the user.
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("git-panini: "):
            sys.stderr.write(line + "\n")
