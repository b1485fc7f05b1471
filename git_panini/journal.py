"""The clean filter's journal: the files a session handed pointers out for before its store commit, so a crash is repairable.

Each filter process appends one JSON line per cleaned file to .git/panini/journal-<pid>, after the
file's data is on disk in a pack with a .keep file naming the process (so `git gc --prune=now` keeps
it), and removes the journal after its local-store commit. A journal whose process is gone means that
commit never happened: `replay()` (run by the pre-commit and post-commit hooks) records every file
whose data is readable here, raw or through a pack, then lets go of the dead process's .keep files,
and names the files whose data is not, so they can be added again.
"""

from __future__ import annotations

import glob
import json
import os

from . import manifest as manifest_mod
from .local import LocalStore
from .pack import release_dead_keeps
from .reader import ChunkSource


class Journal:
    def __init__(self, repo):
        os.makedirs(repo.panini_dir, exist_ok=True)
        self.path = os.path.join(repo.panini_dir, f"journal-{os.getpid()}")
        self.sync = repo.fsync.wants("index")   # as durable as the index that holds the pointer
        self._file = None

    def add(self, path: str, manifest: str):
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps({"path": path, "manifest": manifest}) + "\n")
        self._file.flush()
        if self.sync:
            os.fsync(self._file.fileno())

    def close(self):
        """Called after the store commit: the journal's work is done."""
        if self._file is not None:
            self._file.close()
            self._file = None
            os.remove(self.path)


def alive(pid: int) -> bool:
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
    """Record the readable entries of journals left by dead processes; return the recorded paths and
    the (path, manifest) whose data died with the process."""
    recorded, lost = [], []
    local = LocalStore(repo)
    source = None
    for journal in sorted(glob.glob(os.path.join(repo.panini_dir, "journal-*"))):
        pid = journal.rsplit("-", 1)[1]
        if not pid.isdigit() or alive(int(pid)):
            continue
        manifests, chunks = [], set()
        try:
            with open(journal, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            continue   # another process replayed it meanwhile
        for line in lines:
            try:
                entry = json.loads(line)
                path, manifest = entry["path"], entry["manifest"]
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line: the process died while writing it
            if source is None:
                source = ChunkSource(repo)
            listed = intact_chunks(repo, manifest, source)
            if listed is None:
                lost.append((path, manifest))
                continue
            manifests.append(manifest)
            chunks.update(c for c in listed if repo.exists(c))   # a packed one is kept by its pack's ref
            recorded.append(path)
        if manifests:
            local.record(manifests, sorted(chunks), f"panini: {len(manifests)} file(s) from a journal replay")
        try:
            os.remove(journal)
        except FileNotFoundError:
            pass
    # Recorded (or never named by a pointer): the dead processes' packs need no .keep any more.
    release_dead_keeps(repo.objects_dir, alive)
    if source is not None:
        source.close()
    return recorded, lost


def intact_chunks(repo, manifest: str, source: ChunkSource) -> list[str] | None:
    """The manifest's chunks if every one is readable here (a raw blob, or a pack whose blobs are
    here: a chunk the session deduplicated may have been packed and its raw blob gc'd since)."""
    data = repo.read_kind(manifest, "blob")
    if data is None:
        return None
    try:
        chunks = [c for c, _ in manifest_mod.parse(data, repo.hex_len)]
    except manifest_mod.ManifestError:
        return None
    return chunks if all(source.has(c) for c in chunks) else None
