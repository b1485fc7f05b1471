"""Stranded pointers: pointer blobs at paths whose .gitattributes no longer say filter=panini.

A checkout writes such a blob as it is, so the file becomes the pointer text (`untrack` without
`--renormalize`, then a commit). `untrack` finds them in the index and can re-add their real bytes;
`verify` reports them in the commit it checks, with that commit's own .gitattributes.
"""

from __future__ import annotations

import os
import tempfile

from ..format import pointer_scan as pointers
from ..format.pointer import looks_like_pointer
from ..format.pointer_scan import FoundPointer


def _unfiltered(repo, paths: list[str], cached: bool = False, env=None) -> set[str]:
    """The paths whose `filter` attribute is not panini (git check-attr decides, patterns and all)."""
    if not paths:
        return set()
    query = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
    out = repo.git("check-attr", "-z", "--stdin", *(["--cached"] if cached else []), "filter",
                   input=query, env=env).stdout.split(b"\0")
    return {out[i].decode("utf-8", "surrogateescape") for i in range(0, len(out) - 2, 3) if out[i + 2] != b"panini"}


def in_index(repo) -> list[FoundPointer]:
    """Staged pointers that the working tree's .gitattributes no longer route through the filter."""
    found = pointers.in_index(repo)
    loose = _unfiltered(repo, [f.path for f in found])
    return [f for f in found if f.path in loose]


def in_commit(repo, commit: str) -> list[FoundPointer]:
    """Pointers in commit's tree that a checkout of commit writes as pointer text: its own .gitattributes
    (read through a temporary index) do not say filter=panini for them."""
    found = pointers.in_tree(repo, commit)
    if not found:
        return []
    with tempfile.TemporaryDirectory(prefix="panini-attr-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        repo.git("read-tree", commit, env=env)
        loose = _unfiltered(repo, [f.path for f in found], cached=True, env=env)
    return [f for f in found if f.path in loose]


def renormalize(repo, found: list[FoundPointer]) -> tuple[list[str], list[str]]:
    """`git add --renormalize` the files whose working-tree copy holds real bytes, so the index (and the
    next commit) holds those bytes; returns (renormalized, skipped: the working tree holds pointer text
    or nothing)."""
    done, skipped = [], []
    for f in found:
        full = os.path.join(repo.work_tree, f.path)
        try:
            with open(full, "rb") as handle:
                head = handle.read(1024)
        except OSError:
            skipped.append(f.path)
            continue
        (skipped if looks_like_pointer(head) else done).append(f.path)
    if done:
        repo.git("add", "--renormalize", "--pathspec-from-file=-", "--pathspec-file-nul",
                 input=b"".join(b":(literal)" + p.encode("utf-8", "surrogateescape") + b"\0" for p in done))
    return done, skipped
