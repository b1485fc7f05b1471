"""The remote's status notes, for a repository whose own are missing or behind (a fresh clone has none).

One `git fetch` of refs/notes/panini alone (not the store: notes are all `status` reads), into a ref
private to this process, merged into ours by the same validated merge a full fetch does.
"""

from __future__ import annotations

import os
import uuid

from ..git.repo import ObjectTooLarge, first_error_line
from ..store.notes import NOTES_REF, Notes


class NotesUnavailable(Exception):
    """The remote's notes could not be fetched or merged; the message says why, in one line."""


def fetch_notes(repo, remote: str) -> bool:
    """Merge the remote's notes into ours; False when the remote has none."""
    private = f"refs/panini/fetch/{os.getpid()}-{uuid.uuid4().hex[:8]}/"
    negotiation = [f"--negotiation-tip={NOTES_REF}"] if repo.ref(NOTES_REF) else []
    # A glob refspec: a remote without notes is not an error.
    proc = repo.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules",
                    *negotiation, remote, f"+{NOTES_REF[:-1]}*:{private}panin*", check=False)
    try:
        if proc.returncode != 0:
            raise NotesUnavailable(f"fetching the notes of '{remote}' failed: "
                                   f"{first_error_line(proc.stderr, proc.returncode)}")
        theirs = repo.ref(private + "panini", peel=False)
        if theirs is None:
            return False
        kind = repo.git("cat-file", "-t", theirs).stdout.decode().strip()
        if kind != "commit":
            raise NotesUnavailable(f"{NOTES_REF} on '{remote}' points at a {kind}, not a commit: the remote is "
                                   f"damaged (see git panini fsck --remote {remote})")
        try:
            Notes(repo).merge_from(theirs, f"panini: merge notes from {remote}")
        except (ObjectTooLarge, ValueError) as e:
            raise NotesUnavailable(f"the notes of '{remote}' hold what no git-panini writes: {e}") from None
        return True
    finally:
        refs = repo.git("for-each-ref", "--format=%(refname)", private, check=False).stdout.decode().split()
        if refs:
            repo.git("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs).encode(), check=False)
