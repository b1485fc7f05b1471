"""Proves bit-perfect reconstruction: every chunk re-hashed, every file's sha256 and size checked."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..format.pointer_scan import FoundPointer
from ..store.chunk_source import ChunkSource, ReadError, read_manifest
from ..transfer.remote import SyncError, default_remote, remote_objects
from . import stranded


def verify_files(repo, found: list[FoundPointer], work_tree: str | None, progress=None, warn=None) -> list["FileResult"]:
    """verify_pointer over every file; what is only on the remote (a lazy clone) is fetched first,
    in one request."""
    from ..gitio.materialize import fetch_missing
    source = ChunkSource(repo, fetcher=remote_objects(repo, default_remote(repo)))
    try:
        try:
            fetch_missing(repo, source, [f.pointer.manifest for f in found if f.pointer])
        except SyncError as e:
            if warn:
                warn(str(e))
        source.plan(_all_chunks(repo, found))
        return [verify_pointer(source, f, work_tree, progress) for f in found]
    finally:
        source.close()


def _all_chunks(repo, found: list[FoundPointer]):
    """Every chunk the files name, each file's distinct chunks in the order verify reads them (whose
    manifest is readable)."""
    for f in found:
        if f.pointer is not None:
            try:
                yield from read_manifest(repo, f.pointer).distinct()
            except ReadError:
                continue


def mark_stranded(repo, results: list["FileResult"], commits: list[str]) -> list["FileResult"]:
    """results with every stranded pointer of these commits failed (added when its path was not checked):
    a checkout of the commit writes its pointer text, so the file does not come back bit-perfect."""
    out = list(results)
    at = {r.path: i for i, r in enumerate(out)}
    for commit in commits:
        for f in stranded.in_commit(repo, commit):
            if f.pointer is None:
                continue   # verify reports a malformed pointer already, and it may be a text about pointers
            error = (f"a checkout of {commit[:12]} writes this pointer's text: the .gitattributes there do not "
                     "say filter=panini for it (track it again, or git panini untrack --renormalize and commit)")
            if f.path in at:
                r = out[at[f.path]]
                out[at[f.path]] = FileResult(r.path, False, r.size, r.chunks, error)
            else:
                at[f.path] = len(out)
                out.append(FileResult(f.path, False, f.pointer.size, error=error))
    return out


@dataclass
class FileResult:
    path: str
    ok: bool
    size: int = 0
    chunks: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "size": self.size, "chunks": self.chunks, "error": self.error}


def verify_pointer(source: ChunkSource, found: FoundPointer, work_tree: str | None, progress=None) -> FileResult:
    if found.pointer is None:
        return FileResult(found.path, False, error=f"malformed pointer: {found.error}")
    pointer = found.pointer
    try:
        chunks = read_manifest(source.repo, pointer)
    except ReadError as e:
        return FileResult(found.path, False, pointer.size, error=str(e))
    digest = hashlib.sha256()
    offset = 0
    for chunk, size in chunks:
        try:
            data = source.read(chunk, size)
        except ReadError as e:
            where = _first_difference(work_tree, found.path, pointer, offset, e)
            return FileResult(found.path, False, pointer.size, len(chunks), f"{e}; {where}")
        digest.update(data)
        offset += size
        if progress:
            progress(size)
    if digest.hexdigest() != pointer.sha256:
        return FileResult(found.path, False, pointer.size, len(chunks), "sha256 of the reassembled file differs")
    return FileResult(found.path, True, pointer.size, len(chunks))


def _first_difference(work_tree, path: str, pointer, offset: int, error: ReadError) -> str:
    """Exact offset when the bad bytes can be compared with an intact working-tree copy,
    else the start of the bad chunk."""
    bad = getattr(error, "data", None)
    full = os.path.join(work_tree, path) if work_tree else None
    if bad is not None and full and os.path.isfile(full) and os.path.getsize(full) == pointer.size:
        with open(full, "rb") as f:
            f.seek(offset)
            good = f.read(len(bad))
        for i, (x, y) in enumerate(zip(bad, good)):
            if x != y:
                return f"first differing byte at file offset {offset + i}"
    return f"first bad byte at or after file offset {offset}"
