"""Files a checkout left as their pointer text because their data could not be had (.git/panini/missing).

The smudge filter never fails a checkout over one file (see filter.FilterServer._unavailable): it writes the
pointer text, says why in one line, and records the file here. `git panini status` and `git panini fsck` name
what is recorded, `git panini checkout` (and the post-checkout hook, for data a fetch may bring) tries again.
An entry holds only while the working-tree file is still exactly that pointer text: once the file is checked
out, edited, or gone, it is no longer missing and the entry is dropped the next time the record is read.
"""

from __future__ import annotations

import contextlib
import json
import os

from .markers import MISSING

MAX_RECORD = 16 << 20    # a record larger than this was not written by us: read as empty


def record(repo, path: str, pointer_text: bytes, reason: str):
    """Remember that `path` was left as `pointer_text`, and why (one JSON line, appended)."""
    os.makedirs(repo.panini_dir, exist_ok=True)
    line = json.dumps({"path": path, "pointer": pointer_text.decode("utf-8", "surrogateescape"),
                       "reason": reason}, ensure_ascii=True)
    with open(os.path.join(repo.panini_dir, MISSING), "a", encoding="ascii") as f:
        f.write(line + "\n")


def current(repo) -> dict[str, tuple[bytes, str]]:
    """{path: (its pointer text, why)} of the files still left as their pointer text; stale entries are dropped."""
    if repo.work_tree is None:
        return {}
    where = os.path.join(repo.panini_dir, MISSING)
    entries: dict[str, dict] = {}
    lines = 0
    try:
        if os.path.getsize(where) <= MAX_RECORD:
            with open(where, encoding="ascii", errors="replace") as f:
                for line in f:
                    lines += 1
                    with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                        entry = json.loads(line)
                        entries[str(entry["path"])] = entry   # the latest line for a path wins
    except FileNotFoundError:
        return {}
    held = {path: entry for path, entry in entries.items() if _still_pointer(repo, path, entry.get("pointer"))}
    if len(held) != lines:   # stale entries, or a file recorded again by a later checkout
        _rewrite(where, held.values())
    return {path: (entry["pointer"].encode("utf-8", "surrogateescape"), str(entry.get("reason", "")))
            for path, entry in held.items()}


def _still_pointer(repo, path: str, text) -> bool:
    if not isinstance(text, str) or os.path.isabs(path) or ".." in path.split("/"):
        return False
    pointer = text.encode("utf-8", "surrogateescape")
    try:
        full = os.path.join(repo.work_tree, path)
        if os.path.islink(full) or os.path.getsize(full) != len(pointer):
            return False
        with open(full, "rb") as f:
            return f.read() == pointer
    except OSError:
        return False


def _rewrite(where: str, entries):
    try:
        if not entries:
            os.remove(where)
            return
        with open(where + ".tmp", "w", encoding="ascii") as f:
            f.writelines(json.dumps(e, ensure_ascii=True) + "\n" for e in entries)
        os.replace(where + ".tmp", where)
    except OSError:
        pass   # read-only or full: the stale entries are dropped next time
