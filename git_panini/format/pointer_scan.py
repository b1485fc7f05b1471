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


def _small_blobs(repo, lines):
    """(path, oid) pairs of blobs under the pointer size limit, from '<oid> <path>' lines."""
    pairs = [(l[repo.hex_len + 1:], l[:repo.hex_len]) for l in lines if len(l) > repo.hex_len]
    if not pairs:
        return
    query = "".join(f"{oid}\n" for _, oid in pairs).encode()
    out = repo.git("cat-file", "--batch-check=%(objecttype) %(objectsize)", input=query).stdout.decode().splitlines()
    for (path, oid), info in zip(pairs, out):
        kind, _, size = info.partition(" ")
        if kind == "blob" and size.isdigit() and int(size) < MAX_POINTER_SIZE:
            yield path, oid


def _found(repo, path: str, oid: str) -> FoundPointer | None:
    data = repo.read_kind(oid, "blob") or b""
    if not looks_like_pointer(data):
        return None
    try:
        return FoundPointer(path, oid, parse(data))
    except PointerError as e:
        return FoundPointer(path, oid, None, str(e))


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
        return [f for path, oid in _small_blobs(repo, lines) if (f := _found(repo, path, oid))]
    fresh = [line for line in lines if line[:repo.hex_len] not in seen]
    small = dict((oid, path) for path, oid in _small_blobs(repo, fresh))
    for line in fresh:
        oid = line[:repo.hex_len]
        seen[oid] = _found(repo, small[oid], oid) if oid in small else None
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
    return [f for path, oid in _small_blobs(repo, lines) if (f := _found(repo, path, oid))]


def in_revs(repo, revs: list[str]) -> list[FoundPointer]:
    """Pointers among the objects reachable from revs (e.g. ['A..B'] or ['--all']), once per blob."""
    out = repo.git("rev-list", "--objects", *revs, "--").stdout.decode("utf-8", "surrogateescape")
    return [f for path, oid in _small_blobs(repo, out.splitlines()) if (f := _found(repo, path, oid))]
