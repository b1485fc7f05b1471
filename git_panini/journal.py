"""The clean filter's journal: what a session stored before its single store commit, so a crash is repairable.

Each filter process appends one JSON line per cleaned file to .git/panini/journal-<pid> and
removes the file after its local-store commit. A journal whose process is gone means that commit
never happened: `replay()` (run by the post-commit hook) records what is intact and names the
files whose data was lost with the process, so they can be added again.
"""

from __future__ import annotations

import glob
import json
import os

from . import manifest as manifest_mod
from .local import LocalStore


class Journal:
    def __init__(self, repo):
        os.makedirs(repo.panini_dir, exist_ok=True)
        self.path = os.path.join(repo.panini_dir, f"journal-{os.getpid()}")
        self._file = None

    def add(self, path: str, manifest: str):
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps({"path": path, "manifest": manifest}) + "\n")
        self._file.flush()

    def close(self):
        """Called after the store commit: the journal's work is done."""
        if self._file is not None:
            self._file.close()
            self._file = None
            os.remove(self.path)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed filter whose parent died is one until reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def replay(repo) -> tuple[list[str], list[tuple[str, str]]]:
    """Record the intact entries of journals left by dead processes; return the recorded paths and
    the (path, manifest) whose data died with the process."""
    recorded, lost = [], []
    local = LocalStore(repo)
    for journal in sorted(glob.glob(os.path.join(repo.panini_dir, "journal-*"))):
        pid = journal.rsplit("-", 1)[1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        manifests, chunks = [], set()
        with open(journal, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    path, manifest = entry["path"], entry["manifest"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: the process died while writing it
                listed = intact_chunks(repo, manifest)
                if listed is None:
                    lost.append((path, manifest))
                    continue
                manifests.append(manifest)
                chunks.update(listed)
                recorded.append(path)
        if manifests:
            local.record(manifests, sorted(chunks), f"panini: {len(manifests)} file(s) from a journal replay")
        os.remove(journal)
    return recorded, lost


def intact_chunks(repo, manifest: str) -> list[str] | None:
    data = repo.read_kind(manifest, "blob")
    if data is None:
        return None
    try:
        chunks = [c for c, _ in manifest_mod.parse(data, repo.hex_len)]
    except manifest_mod.ManifestError:
        return None
    return chunks if all(repo.exists(c) for c in chunks) else None
