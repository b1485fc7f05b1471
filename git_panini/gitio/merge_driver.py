"""The merge driver `merge=panini`: a conflict on a tracked file never becomes conflict-marker text.

Git hands the driver the three versions as they are stored (pointer text, or plain bytes for a file
committed before it was tracked) and keeps what the driver leaves in the "ours" file. Outcomes:
- both sides hold the same content (however each was cleaned): resolved, ours kept;
- text-like files on all three sides: `git merge-file` merges their real contents and the result is
  cleaned into a new pointer; resolved when the changes do not overlap, else a conflict whose file holds
  Git's usual conflict markers (text, as in any Git merge);
- anything else (a binary): a conflict (exit 1) with ours left as it is, and one line naming both
  versions and how to pick one. Git then checks ours out (real bytes) and leaves the three stages in the index.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass

from ..format.pointer import Pointer, PointerError, looks_like_pointer, parse
from ..store.chunk_source import ChunkSource, ReadError, iter_file
from ..transfer.remote import remote_objects
from ..util.units import human
from .textconv import MAX_TEXT, decodes_as_text

CLEAN, CONFLICT = 0, 1


@dataclass
class Version:
    """One side of the merge as Git stored it."""
    stored: bytes
    pointer: Pointer | None    # None: plain bytes (or an unparsable pointer, merged as bytes)

    @classmethod
    def load(cls, path: str) -> "Version":
        with open(path, "rb") as f:
            data = f.read()
        pointer = None
        if looks_like_pointer(data):
            try:
                pointer = parse(data)
            except PointerError:
                pointer = None
        return cls(data, pointer)

    @property
    def size(self) -> int:
        return self.pointer.size if self.pointer else len(self.stored)

    @property
    def sha256(self) -> str:
        return self.pointer.sha256 if self.pointer else hashlib.sha256(self.stored).hexdigest()

    def describe(self) -> str:
        return f"{human(self.size)}, sha256 {self.sha256[:12]}"


@dataclass
class Outcome:
    code: int            # CLEAN or CONFLICT, the driver's exit status
    message: str | None  # one line for the user, or None


def merge(repo, base_path: str, ours_path: str, theirs_path: str, path: str) -> Outcome:
    """Merge theirs into the file at ours_path (Git's %A), as the driver must."""
    base, ours, theirs = (Version.load(p) for p in (base_path, ours_path, theirs_path))
    kept = None
    if ours.sha256 == theirs.sha256 and ours.size == theirs.size:
        kept = ours
    elif (base.sha256, base.size) == (ours.sha256, ours.size) and base.stored:
        kept = theirs    # only theirs changed it (Git usually settles this itself)
    elif (base.sha256, base.size) == (theirs.sha256, theirs.size) and base.stored:
        kept = ours
    if kept is not None:
        # A side committed before the path was tracked holds plain bytes: the result is stored as the
        # clean filter would store it, never as a plain blob at a tracked path.
        _write(ours_path, kept.stored if kept.pointer or not kept.stored else _clean(repo, kept.stored, path))
        return Outcome(CLEAN, None)
    merged = _merge_text(repo, base, ours, theirs, path)
    if merged is not None:
        pointer, conflicts = merged
        _write(ours_path, pointer)
        if conflicts:
            return Outcome(CONFLICT, f"{path}: both sides changed the same lines: {conflicts} conflict(s) marked "
                                     f"in the text; edit it, then git add {_quote(path)}")
        return Outcome(CLEAN, f"{path}: merged the text of both sides")
    return Outcome(CONFLICT, f"{path}: both sides changed it; kept ours ({ours.describe()}), theirs is "
                             f"{theirs.describe()}; to pick: git checkout --theirs -- {_quote(path)} "
                             f"(or --ours), then git add {_quote(path)}")


def _merge_text(repo, base: Version, ours: Version, theirs: Version, path: str) -> tuple[bytes, int] | None:
    """The cleaned (pointer) form of a 3-way text merge and its count of conflicts (marked in the text), or
    None when the files are not all text or cannot all be read here."""
    if any(v.size > MAX_TEXT for v in (base, ours, theirs)) or not any(v.pointer for v in (ours, theirs)):
        return None
    contents = _read_all(repo, (base, ours, theirs))
    if contents is None or not all(decodes_as_text(c) or not c for c in contents):
        return None
    with tempfile.TemporaryDirectory(prefix="panini-merge-") as tmp:
        names = []
        for label, data in zip(("base", "ours", "theirs"), contents):
            names.append(os.path.join(tmp, label))
            _write(names[-1], data)
        proc = subprocess.run(["git", "merge-file", "-p", "-q", "-L", "ours", "-L", "base", "-L", "theirs",
                               names[1], names[0], names[2]], capture_output=True)
    if not 0 <= proc.returncode < 128:   # >= 128: an error, not a count of conflicts
        return None
    return _clean(repo, proc.stdout, path), proc.returncode


def _read_all(repo, versions) -> list[bytes] | None:
    source = ChunkSource(repo, fetcher=remote_objects(repo, _remote(repo)))
    try:
        manifests = [v.pointer.manifest for v in versions if v.pointer]
        if source.remote:
            source.prefetch(manifests)
        return [b"".join(iter_file(source, v.pointer)) if v.pointer else v.stored for v in versions]
    except ReadError:
        return None
    finally:
        source.close()


def _remote(repo) -> str | None:
    from ..transfer.remote import default_remote
    return default_remote(repo)


def _clean(repo, data: bytes, path: str) -> bytes:
    """The pointer of data, its chunks and manifest stored as the clean filter stores them."""
    from .writer import IngestSession
    session = IngestSession(repo)
    try:
        pointer = session.clean([data], path)
    finally:
        session.finish()
    return pointer


def _write(path: str, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


def _quote(path: str) -> str:
    return shlex.quote(path)
