"""git-lfs's pointer: the text a git-lfs repository's blobs hold in place of its files (what migrate converts,
and what the clean filter never takes for a file's data)."""

from __future__ import annotations

import re

LFS_VERSION = b"version https://git-lfs.github.com/spec/v1\n"
LFS_MAX_POINTER = 1024
_LFS_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
_LFS_SIZE = re.compile(rb"^size (\d+)$", re.M)


def lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """(sha256, size) of a git-lfs pointer, else None."""
    if not data.startswith(LFS_VERSION) or len(data) >= LFS_MAX_POINTER:
        return None
    oid, size = _LFS_OID.search(data), _LFS_SIZE.search(data)
    return (oid.group(1).decode(), int(size.group(1))) if oid and size else None
