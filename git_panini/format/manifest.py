"""The manifest: a blob listing a file's chunks in order, one '<oid> <size>' a line."""

from __future__ import annotations

import re

_LOWER_HEX = re.compile(r"[0-9a-f]+")
MAX_CHUNK_SIZE = 16 << 20  # far above any chunker setting: a larger claim is hostile
# ~5 M chunks: files of hundreds of GiB. A larger blob named as a manifest is refused unread.
MAX_MANIFEST_SIZE = 256 << 20


class ManifestError(ValueError):
    pass


def encode(chunks: list[tuple[str, int]]) -> bytes:
    return "".join(f"{oid} {size}\n" for oid, size in chunks).encode()


def parse(data: bytes, hex_len: int) -> list[tuple[str, int]]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ManifestError("manifest is not ASCII") from None
    if text and not text.endswith("\n"):
        raise ManifestError("manifest is truncated")
    chunks = []
    for n, line in enumerate(text.splitlines(), 1):
        oid, _, size = line.partition(" ")
        if len(oid) != hex_len or not size.isdigit() or not _LOWER_HEX.fullmatch(oid):
            raise ManifestError(f"manifest line {n} is malformed")
        size_n = int(size)
        if not 0 < size_n <= MAX_CHUNK_SIZE:
            raise ManifestError(f"manifest line {n} claims an impossible chunk size {size_n}")
        chunks.append((oid, size_n))
    return chunks
