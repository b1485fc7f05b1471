"""`migrate info`: what `migrate import` would convert, counted per pattern (else per extension)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...format import pointer as pointer_mod
from ...format.lfs_pointer import LFS_MAX_POINTER, lfs_pointer
from .attributes import PatternMatcher, check_patterns
from .blobs import BlobReader, files_in_history
from .refs import resolve_refs


@dataclass
class InfoRow:
    """One pattern's (or extension's) row of `migrate info`."""
    pattern: str
    blobs: int = 0
    paths: set = field(default_factory=set)
    bytes: int = 0
    lfs: int = 0             # of which git-lfs pointers (counted at their objects' size)

    def as_dict(self) -> dict:
        return {"pattern": self.pattern, "blobs": self.blobs, "paths": len(self.paths), "bytes": self.bytes,
                "lfs_pointers": self.lfs}


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return f"*{name[name.rindex('.'):]}" if "." in name.lstrip(".") else name


def info(repo, include: list[str], exclude: list[str], refs: list[str], everything: bool) -> list[InfoRow]:
    """What `migrate import` would convert: per include pattern (else per extension) blobs, paths and bytes."""
    check_patterns(include + exclude)
    names = resolve_refs(repo, refs, everything)
    rows: dict[str, InfoRow] = {}
    matcher = PatternMatcher(repo, include, exclude) if include else None
    blobs = BlobReader(repo)
    counted: set[tuple[str, str]] = set()    # (row, blob): a blob counts once per row, at every path
    try:
        for oid, path in files_in_history(repo, names):
            if pointer_mod.read_by_git(path):
                continue    # a file git reads itself: import leaves it
            if matcher is not None:
                index = matcher.match(path)
                if index is None:
                    continue
                key = include[index]
            else:
                key = _extension(path)
            size, lfs = blobs.size(oid), False
            if size < LFS_MAX_POINTER:
                data = blobs.read(oid)
                if pointer_mod.looks_like_pointer(data) or not data:
                    continue
                if (found := lfs_pointer(data)) is not None:
                    size, lfs = found[1], True
            row = rows.setdefault(key, InfoRow(key))
            row.paths.add(path)
            if (key, oid) not in counted:
                counted.add((key, oid))
                row.blobs += 1
                row.bytes += size
                row.lfs += lfs
    finally:
        blobs.close()
        if matcher is not None:
            matcher.close()
    return sorted(rows.values(), key=lambda r: (-r.bytes, r.pattern))
