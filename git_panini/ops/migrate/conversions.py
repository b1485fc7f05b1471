"""The two conversions a rewrite applies to each selected blob and to .gitattributes: import (files and
git-lfs pointers -> git-panini pointers) and export (pointers -> the files' bytes)."""

from __future__ import annotations

from ...format import pointer as pointer_mod
from ...format.lfs_pointer import lfs_pointer
from ...gitio.writer import IngestSession
from ...store.chunk_source import ChunkSource, iter_file, missing_chunks
from ...transfer.remote import default_remote, remote_objects
from .attributes import (
    ATTRS,
    EXCLUDED_ATTRS,
    OLD_EXCLUDED_ATTRS,
    attribute_lines,
    quote_pattern,
    relative_pattern,
    sets_filter,
    split_attribute_lines,
)
from .blobs import BLOCK, BlobReader
from .errors import MigrateError
from .lfs import LfsObjects, drop_lfs_lines


def _file_blocks(path: str):
    with open(path, "rb") as f:
        while data := f.read(BLOCK):
            yield data


def _newline(content: bytes | None) -> str:
    """The line ending a .gitattributes uses (CRLF ones stay CRLF: export then gives back the same blob)."""
    return "\r\n" if content and b"\r\n" in content else "\n"


class ImportConversion:
    """Plain blobs and git-lfs pointers -> git-panini pointers; .gitattributes gains the patterns' lines."""

    def __init__(self, repo, blobs: BlobReader, include: list[str], exclude: list[str]):
        self.blobs = blobs
        self.session = IngestSession(repo)
        self.lfs_objects = LfsObjects(repo)
        self.lines = attribute_lines(include, exclude)
        self._patterns = [(p, ATTRS) for p in include] + [(p, EXCLUDED_ATTRS) for p in exclude]
        self._replaced = {quote_pattern(p) for p in include}   # git-lfs lines for these patterns go

    def convert(self, oid: str, path: str) -> tuple[bytes, int] | None:
        """(pointer bytes, file size) for the blob, or None to keep it as it is."""
        size = self.blobs.size(oid)
        if size >= pointer_mod.MAX_POINTER_SIZE:
            return self.session.clean(self.blobs.blocks(oid), path), size
        data = self.blobs.read(oid)
        if not data or pointer_mod.looks_like_pointer(data):
            return None      # empty, or a git-panini pointer already
        lfs = lfs_pointer(data)
        if lfs is None:
            return self.session.clean([data], path), size
        sha256, lfs_size = lfs
        stored = self.lfs_objects.path(sha256, path)
        pointer = self.session.clean(_file_blocks(stored), path)
        got = pointer_mod.parse(pointer) if pointer else None
        if (got.sha256 if got else "") != sha256 or (got.size if got else 0) != lfs_size:
            raise MigrateError(f"{path}: git-lfs object {sha256} in .git/lfs/objects does not match its pointer")
        return pointer, lfs_size

    def blob_of(self, converted) -> tuple[int, object]:
        pointer, _ = converted
        return len(pointer), [pointer]

    def attributes(self, content: bytes | None, folder: str = "") -> bytes | None:
        """The rewritten .gitattributes of folder ("" at the top)."""
        lines = split_attribute_lines((content or b"").decode("utf-8", "surrogateescape"))
        if folder and not any(l.split() and sets_filter(l) for l in lines):
            return content    # nothing here can override the top-level lines
        ours, replaced = self.lines, self._replaced
        if folder:
            ours = [f"{quote_pattern(rel)} {rest}" for p, rest in self._patterns
                    if (rel := relative_pattern(p, folder)) is not None]
            replaced = {l.split()[0] for l in ours}
        kept, extras = drop_lfs_lines(lines, replaced)   # extras: `lockable` and such, kept on ours
        ours = [" ".join([line, *extras.get(line.split()[0], [])]) for line in ours]
        added = [l for l in ours if l not in kept]
        if not added and len(kept) == len(lines):
            return content
        text = _newline(content).join(kept + added) + _newline(content)
        return text.encode("utf-8", "surrogateescape")

    def finish(self):
        """Flush packs and record every manifest and chunk in refs/panini/local (before refs move)."""
        self.session.finish()

    def abort(self):
        """Record nothing: what was packed so far is unreferenced, garbage for `git gc`."""
        self.session.journal.close()


class ExportConversion:
    """git-panini pointers -> the files' verified bytes; .gitattributes loses the patterns' lines."""

    def __init__(self, repo, blobs: BlobReader, include: list[str], exclude: list[str]):
        self.blobs = blobs
        # A clone (after gc, or lazy) holds only what its checkouts needed: the rest comes from the remote.
        self.source = ChunkSource(repo, fetcher=remote_objects(repo, default_remote(repo)))
        self.lines = set(attribute_lines(include, exclude)) if include else None
        self.patterns = include + exclude

    def convert(self, oid: str, path: str):
        if self.blobs.size(oid) >= pointer_mod.MAX_POINTER_SIZE:
            return None
        data = self.blobs.read(oid)
        if not pointer_mod.looks_like_pointer(data):
            return None
        try:
            pointer = pointer_mod.parse(data)
        except pointer_mod.PointerError as e:
            raise MigrateError(f"{path}: malformed pointer in blob {oid} ({e})") from None
        if self.source.remote and missing_chunks(self.source, pointer):
            self.source.prefetch([pointer.manifest])
        return pointer, pointer.size

    def blob_of(self, converted) -> tuple[int, object]:
        pointer, size = converted
        return size, iter_file(self.source, pointer)

    def attributes(self, content: bytes | None, folder: str = "") -> bytes | None:
        if content is None:
            return None
        lines = split_attribute_lines(content.decode("utf-8", "surrogateescape"))
        # A pattern's line routes it through the panini filter whatever else it says (`lockable`, an older
        # version's attributes), or is one of our exclusions.
        ours = [l for l in lines if l.split() and ("filter=panini" in l.split()[1:]
                                                   or " ".join(l.split()[1:]) in (EXCLUDED_ATTRS, OLD_EXCLUDED_ATTRS))]
        if self.lines is not None:   # only the given patterns
            patterns = {quote_pattern(rel) for p in self.patterns
                        if (rel := relative_pattern(p, folder) if folder else p) is not None}
            ours = [l for l in ours if l.split()[0] in patterns]
        if not ours:
            return content
        kept = []
        for line in lines:
            fields = line.split()
            if line not in ours:
                kept.append(line)
            elif extra := [a for a in fields[1:] if a not in ATTRS.split() and a not in EXCLUDED_ATTRS.split()]:
                kept.append(" ".join([fields[0], *extra]))   # what else it said (`lockable`) stays
        if not any(l.strip() for l in kept):
            return None
        return (_newline(content).join(kept) + _newline(content)).encode("utf-8", "surrogateescape")

    def finish(self):
        self.source.close()

    abort = finish
