"""What `git diff` compares for a tracked file (the diff driver's textconv): its text, or one summary line."""

from __future__ import annotations

import hashlib

from ..format.pointer import PointerError, looks_like_pointer, parse
from ..format.segment import sniff_format
from ..store.chunk_source import ChunkSource, ReadError, iter_file

MAX_TEXT = 32 << 20  # larger text files are summarized: a diff of them helps no one
_HEAD = 64 << 10


def decodes_as_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a character cut at the end of the sample is still text
            return False
    return True


def summary(size: int, sha256: str, head: bytes | None) -> bytes:
    kind = "data not readable here" if head is None else sniff_format(head) or "binary"
    return f"git-panini: {size} bytes, sha256 {sha256}, {kind}\n".encode()


def convert(repo, path: str, out) -> None:
    """Write what Git should diff for the file at path: a pointer (a committed side) or the real bytes (the
    working tree side) both become the same text, or the same summary line."""
    with open(path, "rb") as f:
        first = f.read(1024)
        if looks_like_pointer(first):
            try:
                pointer = parse(first + f.read())
            except PointerError:
                pointer = None
            if pointer is not None:
                _convert_pointer(repo, pointer, out)
                return
        f.seek(0)
        head = f.read(_HEAD)
        digest, size = hashlib.sha256(head), len(head)
        text = decodes_as_text(head) and size <= MAX_TEXT
        parts = [head]
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            text = text and size <= MAX_TEXT
            parts = parts + [block] if text else []
    if text:
        out.write(b"".join(parts))
    else:
        out.write(summary(size, digest.hexdigest(), head))


def _convert_pointer(repo, pointer, out) -> None:
    source = ChunkSource(repo)
    try:
        pieces = iter_file(source, pointer)
        head = b""
        buffered = []
        for piece in pieces:
            buffered.append(piece)
            head += piece[:_HEAD - len(head)]
            if len(head) >= _HEAD:
                break
        if pointer.size > MAX_TEXT or not decodes_as_text(head):
            out.write(summary(pointer.size, pointer.sha256, head))
            return
        for piece in buffered:
            out.write(piece)
        for piece in pieces:
            out.write(piece)
    except ReadError:
        out.write(summary(pointer.size, pointer.sha256, None))
    finally:
        source.close()
