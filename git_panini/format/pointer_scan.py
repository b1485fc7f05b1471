"""Finds pointer blobs in a tree, a commit range or the whole history."""

from __future__ import annotations

from dataclasses import dataclass

from .pointer import MAX_POINTER_SIZE, Pointer, PointerError, looks_like_pointer, parse


@dataclass
class FoundPointer:
    path: str
    blob: str
    pointer: Pointer | None      # None when the blob looks like a pointer but is malformed
    error: str | None = None


def _pointers(repo, pairs) -> list[FoundPointer]:
    """FoundPointer of each (path, oid) pair whose blob is a pointer, in order; the blobs are read in one
    batch, a blob too large to be a pointer never."""
    parsed: dict[str, tuple] = {}
    for oid, data in repo.read_many(dict.fromkeys(oid for _, oid in pairs), "blob", MAX_POINTER_SIZE - 1):
        if looks_like_pointer(data):
            try:
                parsed[oid] = (parse(data), None)
            except PointerError as e:
                parsed[oid] = (None, str(e))
    return [FoundPointer(path, oid, *parsed[oid]) for path, oid in pairs if oid in parsed]


def _pairs(repo, lines):
    """(path, oid) pairs from '<oid> <path>' lines."""
    return [(l[repo.hex_len + 1:], l[:repo.hex_len]) for l in lines if len(l) > repo.hex_len]


def in_tree(repo, treeish: str = "HEAD", seen: dict | None = None) -> list[FoundPointer]:
    """Pointers in a tree; `seen` ({blob: FoundPointer or None}) spares re-reading the blobs a scan of
    many commits meets again."""
    proc = repo.git("ls-tree", "-r", "-z", "--full-tree", treeish, check=False)
    if proc.returncode != 0:
        return []
    lines = []
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = record.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            lines.append(f"{parts[2]} {path}")
    if seen is None:
        return _pointers(repo, _pairs(repo, lines))
    fresh = [line for line in lines if line[:repo.hex_len] not in seen]
    for line in fresh:
        seen[line[:repo.hex_len]] = None
    for f in _pointers(repo, _pairs(repo, fresh)):
        seen[f.blob] = f
    found = []
    for line in lines:
        known = seen[line[:repo.hex_len]]
        if known is not None:
            found.append(FoundPointer(line[repo.hex_len + 1:], known.blob, known.pointer, known.error))
    return found


def in_index(repo) -> list[FoundPointer]:
    """Pointers staged in the index, whatever their path."""
    out = repo.git("ls-files", "-s", "-z").stdout.decode("utf-8", "surrogateescape")
    lines = []
    for record in out.split("\0"):
        meta, _, path = record.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[0] != "160000":
            lines.append(f"{parts[1]} {path}")
    return _pointers(repo, _pairs(repo, lines))


def in_revs(repo, revs: list[str]) -> list[FoundPointer]:
    """Pointers among the objects reachable from revs (e.g. ['A..B'] or ['--all']), once per blob."""
    out = repo.git("rev-list", "--objects", *revs, "--").stdout.decode("utf-8", "surrogateescape")
    return _pointers(repo, _pairs(repo, out.splitlines()))
