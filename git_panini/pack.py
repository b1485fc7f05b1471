"""Writes Git packfiles and their v2 indexes directly, so chunk data never becomes loose objects."""

from __future__ import annotations

import os
import struct
import tempfile
import zlib

from .objects import new_hasher, object_id

TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3}


def _object_header(kind: str, size: int) -> bytes:
    byte = (TYPE_CODES[kind] << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


class PackWriter:
    """Collects objects in memory up to `batch_bytes`, then writes them as one pack + idx.

    Memory stays bounded by the batch size; the objects become visible to Git (and to
    readers) only after flush(), which is called automatically when a batch is full.
    """

    def __init__(self, objects_dir: str, algo: str, batch_bytes: int = 64 << 20, level: int = 0):
        self.pack_dir = os.path.join(objects_dir, "pack")
        self.algo = algo
        self.batch_bytes = batch_bytes
        self.level = level
        self._pending: list[tuple[str, bytes]] = []  # (oid, packed bytes)
        self._pending_ids: set[str] = set()
        self._pending_bytes = 0
        self.packs_written: list[str] = []

    def add(self, kind: str, data: bytes | memoryview, oid: str | None = None) -> str:
        oid = oid or object_id(kind, data, self.algo)
        if oid in self._pending_ids:
            return oid
        packed = _object_header(kind, len(data)) + zlib.compress(data, self.level)
        self._pending.append((oid, packed))
        self._pending_ids.add(oid)
        self._pending_bytes += len(packed)
        if self._pending_bytes >= self.batch_bytes:
            self.flush()
        return oid

    def __contains__(self, oid: str) -> bool:
        return oid in self._pending_ids

    def flush(self) -> str | None:
        """Write pending objects as a pack; return the pack's path (None if nothing pending)."""
        if not self._pending:
            return None
        os.makedirs(self.pack_dir, exist_ok=True)
        pack_hash = new_hasher(self.algo)
        entries = []  # (oid, crc32, offset)
        fd, tmp_pack = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_pack_")
        with os.fdopen(fd, "wb") as f:
            header = b"PACK" + struct.pack(">II", 2, len(self._pending))
            f.write(header)
            pack_hash.update(header)
            offset = len(header)
            for oid, packed in self._pending:
                entries.append((oid, zlib.crc32(packed), offset))
                f.write(packed)
                pack_hash.update(packed)
                offset += len(packed)
            checksum = pack_hash.digest()
            f.write(checksum)
        name = os.path.join(self.pack_dir, "pack-" + checksum.hex())
        idx = _encode_index(entries, checksum, self.algo)
        fd, tmp_idx = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_idx_")
        with os.fdopen(fd, "wb") as f:
            f.write(idx)
        for tmp in (tmp_pack, tmp_idx):
            os.chmod(tmp, 0o444)
        # The .idx is what makes a pack visible, so it lands last.
        os.replace(tmp_pack, name + ".pack")
        os.replace(tmp_idx, name + ".idx")
        self._pending, self._pending_ids, self._pending_bytes = [], set(), 0
        self.packs_written.append(name + ".pack")
        return name + ".pack"


def _encode_index(entries, pack_checksum: bytes, algo: str) -> bytes:
    entries = sorted(entries)
    fanout = [0] * 256
    for oid, _, _ in entries:
        fanout[int(oid[:2], 16)] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    out = bytearray(b"\377tOc" + struct.pack(">I", 2))
    out += struct.pack(">256I", *fanout)
    for oid, _, _ in entries:
        out += bytes.fromhex(oid)
    for _, crc, _ in entries:
        out += struct.pack(">I", crc)
    large = []
    for _, _, offset in entries:
        if offset < 0x80000000:
            out += struct.pack(">I", offset)
        else:
            out += struct.pack(">I", 0x80000000 | len(large))
            large.append(offset)
    for offset in large:
        out += struct.pack(">Q", offset)
    out += pack_checksum
    h = new_hasher(algo)
    h.update(out)
    return bytes(out) + h.digest()
