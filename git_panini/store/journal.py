"""The clean filter's journal and write-ahead log: what a session handed pointers out for before its store commit, so a crash is repairable.

A filter session keeps two files in .git/panini/, named by its process and a token of its own:

- `wal-<pid>-<token>`: the new objects (chunks and manifests) of the small files it cleaned, not yet in a
  pack, and each cleaned file's journal line: a header line, then records of a kind (`o` object, `f` entry),
  a 4-byte big-endian length and the bytes. `git gc` never looks here, so these objects survive
  `gc --prune=now` with no ref and no .keep file; a file costs one append (and one fsync, when core.fsync
  asks) instead of a pack, an index and a .keep file.
- `journal-<pid>-<token>`: the same journal lines ({"path", "manifest"}), kept across the WAL's cuts.

The token ends in `.<create time>` (of the process, in milliseconds: util.liveness.create_time) when it
could be read: a later process that got the pid does not keep a dead session's files waiting. Files
without it (git-panini before it, or no create time) are judged by their pid alone.

Both are written once the file's data is on disk (in the WAL, or for a large file in a pack with a .keep
file naming the process) and before its pointer leaves the filter. When the WAL grows large its objects go
into a kept pack and it starts again empty; the session's store commit removes both files. A journal whose
process is gone means that commit never happened: `replay()` (run by the pre-commit and post-commit hooks)
writes the dead session's WAL objects into a pack, records every file whose data is readable here, raw or
through a pack, lets go of the dead process's .keep files, and names the files whose data is not, so they
can be added again.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import struct
from typing import TYPE_CHECKING

from ..format.manifest import ManifestError
from ..git.objects import object_id
from ..git.pack import PackWriter, release_dead_keeps
from ..util import file_lock, liveness
from . import manifests as manifest_store
from .local import LocalStore

if TYPE_CHECKING:
    from .chunk_source import ChunkSource

WAL_HEADER = b"git-panini wal 1\n"
_RECORD = struct.Struct(">cI")   # kind, length of what follows
OBJECT, ENTRY = b"o", b"f"


class Journal:
    def __init__(self, repo):
        os.makedirs(repo.panini_dir, exist_ok=True)
        # A token: a dead predecessor with our pid keeps its files; our create time: judged dead once we are.
        pid = os.getpid()
        started = liveness.own_create_time()
        name = f"{pid}-{secrets.token_hex(4)}" + ("" if started is None else f".{round(started * 1000)}")
        self.path = os.path.join(repo.panini_dir, f"journal-{name}")
        self.wal_path = os.path.join(repo.panini_dir, f"wal-{name}")
        self.sync = repo.fsync.wants("index")   # as durable as the index that holds the pointer
        self._file = None
        self._wal = None

    def log(self, path: str, manifest: str, blobs: list[bytes]):
        """A cleaned file: its new objects (none when they are in a kept pack) and its entry, appended to
        the WAL, which alone is fsynced (one fsync a file; the journal is, before the WAL is cut), then
        the entry to the journal."""
        if self._wal is None:
            self._wal = open(self.wal_path, "ab")
            self._wal.write(WAL_HEADER)
            self._file = open(self.path, "a", encoding="utf-8")
        entry = json.dumps({"path": path, "manifest": manifest}) + "\n"
        records = [part for blob in blobs for part in (_RECORD.pack(OBJECT, len(blob)), blob)]
        records += [_RECORD.pack(ENTRY, len(entry.encode())), entry.encode()]
        start = self._wal.tell()
        try:
            self._wal.write(b"".join(records))
            self._wal.flush()
            if self.sync:
                os.fsync(self._wal.fileno())
        except BaseException:
            with contextlib.suppress(OSError):   # a full disk: what this file wrote is nobody's
                self._wal.truncate(start)
            raise
        self._file.write(entry)
        self._file.flush()

    def checkpoint(self):
        """Every object logged so far is in a flushed, kept pack now: the WAL may start again, once
        the journal holds its entries durably."""
        if self._wal is not None:
            if self.sync:
                os.fsync(self._file.fileno())
            self._wal.truncate(len(WAL_HEADER))

    def close(self):
        """Called after the store commit: the WAL, then the journal (a journal left alone replays to
        the same store entries; a WAL left alone is removed by the next replay)."""
        for handle, path in ((self._wal, self.wal_path), (self._file, self.path)):
            if handle is not None:
                handle.close()
                os.remove(path)
        self._wal = self._file = None


def _owner(path: str) -> tuple[int, float | None] | None:
    """(pid, create time or None) of journal-<pid>-<token>[.<create time in ms>], wal-<pid>-<token>[...],
    or a journal-<pid> of git-panini before the WAL; None for a name of none of these forms."""
    parts = os.path.basename(path).split("-")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        return None
    mark = parts[2].partition(".")[2] if len(parts) == 3 else ""
    return int(parts[1]), (int(mark) / 1000 if mark.isdigit() else None)


def _pid_of(path: str) -> int | None:
    owner = _owner(path)
    return owner[0] if owner else None


def _dead(path: str) -> bool:
    """The session that wrote this file is gone (liveness.alive; one that cannot be inspected is not)."""
    owner = _owner(path)
    return owner is not None and not liveness.alive(*owner)


def abandoned(repo) -> bool:
    """Some journal here was left by a session that is gone: replay() has something to record."""
    return any(_dead(path) for path in glob.glob(os.path.join(repo.panini_dir, "journal-*")))


@contextlib.contextmanager
def _replaying(repo):
    """One replay at a time: a second one waits, then finds the files the first one handled gone. The lock
    (flock on POSIX, msvcrt on Windows) goes with its holder's file handle: a replay killed midway holds
    nothing."""
    os.makedirs(repo.panini_dir, exist_ok=True)
    with file_lock.exclusive(os.path.join(repo.panini_dir, "replay.lock")):
        yield


def read_wal(path: str) -> tuple[list[bytes], list[str]]:
    """The complete objects and entry lines of a WAL (a torn last record, from a kill mid-write, is left out)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], []
    if not data.startswith(WAL_HEADER):
        return [], []
    blobs, entries, pos = [], [], len(WAL_HEADER)
    while pos + _RECORD.size <= len(data):
        kind, length = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        if pos + length > len(data):
            break
        record = data[pos:pos + length]
        if kind == OBJECT:
            blobs.append(record)
        elif kind == ENTRY:
            entries.append(record.decode("utf-8", "replace"))
        pos += length
    return blobs, entries


def _pack_wal(repo, blobs: list[bytes]) -> PackWriter | None:
    """A dead session's logged objects, written into a kept pack (until the store commit names them)."""
    writer = None
    for blob in blobs:
        oid = object_id("blob", blob, repo.algo)
        if not repo.exists(oid):
            if writer is None:
                writer = PackWriter(repo.objects_dir, repo.algo, keep=True, sync=repo.fsync.wants("pack"))
            writer.add("blob", blob, oid)
    if writer is not None:
        writer.flush()
    return writer


def replay(repo) -> tuple[list[str], list[tuple[str, str]]]:
    """Record the readable entries of journals left by dead processes; return the recorded paths and
    the (path, manifest) whose data died with the process."""
    recorded, lost = [], []
    with _replaying(repo):
        local = LocalStore(repo)
        for journal in sorted(glob.glob(os.path.join(repo.panini_dir, "journal-*"))):
            if not _dead(journal):
                continue
            try:
                with open(journal, encoding="utf-8") as f:
                    lines = f.readlines()
            except FileNotFoundError:
                continue
            wal = journal.replace(os.sep + "journal-", os.sep + "wal-")
            blobs, logged = read_wal(wal)
            packed = _pack_wal(repo, blobs)
            lines = list(dict.fromkeys(lines + logged))   # the WAL's entries since its last cut, some in both
            from .chunk_source import ChunkSource  # replay only: a clean session does not load the reader
            source = ChunkSource(repo)
            manifests, chunks = [], set()
            for line in lines:
                try:
                    entry = json.loads(line)
                    path, manifest = entry["path"], entry["manifest"]
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line: the process died while writing it
                listed = intact_chunks(repo, manifest, source)
                if listed is None:
                    lost.append((path, manifest))
                    continue
                manifests.append(manifest)
                chunks.update(c for c in listed if repo.exists(c))   # a packed one is kept by its pack's ref
                recorded.append(path)
            source.close()
            if manifests:
                local.record(manifests, sorted(chunks), f"panini: {len(manifests)} file(s) from a journal replay")
            if packed is not None:
                packed.release_keeps()
            for done in (wal, journal):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(done)
        # A WAL without its journal: its session died before handing out a pointer, or after its commit.
        for wal in glob.glob(os.path.join(repo.panini_dir, "wal-*")):
            if _dead(wal) and not os.path.exists(wal.replace(os.sep + "wal-", os.sep + "journal-")):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(wal)
        # Recorded (or never named by a pointer): the dead processes' packs need no .keep any more.
        _release_keeps(repo)
    return recorded, lost


def release_abandoned_keeps(repo):
    """Let `git gc` have the packs of dead processes that no journal waits for (a checkout killed before its
    read cache named its pack); a dead clean filter's stay kept until replay() records them."""
    with _replaying(repo):
        _release_keeps(repo)


def _release_keeps(repo):
    """A pid that still has a journal or WAL here keeps its .keep files whatever its process looks like now:
    that session's pointers are not recorded yet (it is alive, or its pid was reused before replay)."""
    waiting = {pid for path in glob.glob(os.path.join(repo.panini_dir, "journal-*"))
               + glob.glob(os.path.join(repo.panini_dir, "wal-*")) if (pid := _pid_of(path)) is not None}
    release_dead_keeps(repo.objects_dir, lambda pid: pid in waiting or liveness.alive(pid))


def intact_chunks(repo, manifest: str, source: ChunkSource) -> list[str] | None:
    """The manifest's chunks if every one is readable here (a raw blob, or a pack whose blobs are
    here: a chunk the session deduplicated may have been packed and its raw blob gc'd since)."""
    try:
        m = manifest_store.load(repo, manifest)
    except ManifestError:
        return None
    if m is None:
        return None
    return m.chunks if all(source.has(c) for c in m.chunks) else None
