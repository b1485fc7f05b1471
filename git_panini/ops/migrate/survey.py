"""`migrate info`: what `migrate import` would convert, counted per pattern (else per extension)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from ...format import pointer as pointer_mod
from .attributes import PatternMatcher, check_patterns
from .blobs import BlobReader
from .lfs import LFS_MAX_POINTER, lfs_pointer
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


def _files_in_history(repo, names: list[str]):
    """(blob id, path) of every regular file any commit of the refs holds, each pair once: what the rewrite
    visits. (rev-list --objects would name a blob under one path only, however many it sits at.)"""
    proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, "log", "--raw", "-z", "--no-abbrev", "--no-renames",
                             "--root", "--diff-merges=first-parent", "--format=", *names, "--"],
                            stdout=subprocess.PIPE)
    seen, meta = set(), None
    try:
        for token in _split_nul(proc.stdout):
            if meta is not None:
                fields, meta = meta.split(), None
                if fields[1] in ("100644", "100755") and fields[4] != "D" and (fields[3], token) not in seen:
                    seen.add((fields[3], token))
                    yield fields[3], token
            elif token.startswith(":"):
                meta = token
    finally:
        proc.stdout.close()
        proc.wait()


def _split_nul(stream):
    rest = b""
    while block := stream.read(1 << 16):
        *tokens, rest = (rest + block).split(b"\0")
        for token in tokens:
            yield token.lstrip(b"\n").decode("utf-8", "surrogateescape")


def info(repo, include: list[str], exclude: list[str], refs: list[str], everything: bool) -> list[InfoRow]:
    """What `migrate import` would convert: per include pattern (else per extension) blobs, paths and bytes."""
    check_patterns(include + exclude)
    names = resolve_refs(repo, refs, everything)
    rows: dict[str, InfoRow] = {}
    matcher = PatternMatcher(repo, include, exclude) if include else None
    blobs = BlobReader(repo)
    counted: set[tuple[str, str]] = set()    # (row, blob): a blob counts once per row, at every path
    try:
        for oid, path in _files_in_history(repo, names):
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
