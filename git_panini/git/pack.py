"""Writes Git packfiles and their v2 indexes directly, so chunk data never becomes loose objects."""

from __future__ import annotations

import os
import re
import struct
import tempfile
import threading
import zlib

from .durability import fsync_dir, sync_all
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


def zlib_stored(data: bytes | memoryview) -> bytes:
    """A zlib stream of stored (uncompressed) blocks, built directly: zlib.compress(level=0)
    copies through its window and runs at a third of the speed. Workers compress later."""
    view = memoryview(data)
    parts = [b"\x78\x01"]
    if not len(view):
        parts.append(b"\x01\x00\x00\xff\xff")
    for pos in range(0, len(view), 65535):
        block = view[pos:pos + 65535]
        parts.append(struct.pack("<BHH", pos + 65535 >= len(view), len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    parts.append(struct.pack(">I", zlib.adler32(view)))
    return b"".join(parts)


KEEP_MARK = "git-panini "   # a .keep file we wrote says "git-panini <pid>"
_PACK_NAME = re.compile(r"pack-[0-9a-f]{40,64}\.keep")


class PackWriter:
    """Collects objects in memory up to `batch_bytes`, then writes them as one pack + idx.

    A full batch is written by a background thread (hashing a pack costs as much as hashing
    its content), so at most two batches are in memory. Objects become visible to Git and to
    readers only once flush() has returned.

    keep=True: every pack gets a .keep file (naming this process) before it becomes visible, so
    `git gc --prune=now` keeps its objects although no ref reaches them yet; release_keeps() once a
    ref does. sync=True: pack, index and directory are fsynced before flush() returns.
    """

    def __init__(self, objects_dir: str, algo: str, batch_bytes: int = 64 << 20, level: int = 0,
                 keep: bool = False, sync: bool = False):
        self.pack_dir = os.path.join(objects_dir, "pack")
        self.algo = algo
        self.batch_bytes = batch_bytes
        self.level = level
        self.keep = keep
        self.sync = sync
        self._pending: list[tuple[str, bytes]] = []  # (oid, packed bytes)
        self._pending_bytes = 0
        self._ids: set[str] = set()                   # everything added, flushed or not
        self._writing: threading.Thread | None = None
        self._error: BaseException | None = None
        self.packs_written: list[str] = []
        self._oids_written: list[list[str]] = []      # per pack written, the ids it holds
        self._created: list[bool] = []                # per pack written, whether this writer created it

    def add(self, kind: str, data: bytes | memoryview, oid: str | None = None) -> str:
        oid = oid or object_id(kind, data, self.algo)
        if oid in self._ids:
            return oid
        body = zlib_stored(data) if self.level == 0 else zlib.compress(data, self.level)
        packed = _object_header(kind, len(data)) + body
        self._pending.append((oid, packed))
        self._ids.add(oid)
        self._pending_bytes += len(packed)
        if self._pending_bytes >= self.batch_bytes:
            self._start_write()
        return oid

    def __contains__(self, oid: str) -> bool:
        return oid in self._ids

    def _start_write(self):
        self._wait()
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._writing = threading.Thread(target=self._write_safely, args=(batch,), daemon=True)
        self._writing.start()

    def _write_safely(self, batch):
        try:
            path, created = self._write(batch)
            self.packs_written.append(path)
            self._created.append(created)
            self._oids_written.append([oid for oid, _ in batch])
        except BaseException as e:  # re-raised in the caller's thread by _wait()
            self._ids.difference_update(oid for oid, _ in batch)   # not written: add() may take them again
            self._error = e

    def _wait(self):
        if self._writing is not None:
            self._writing.join()
            self._writing = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush(self) -> str | None:
        """Write everything pending and wait until it is on disk; return the last pack's path."""
        self._wait()
        if self._pending:   # in this thread: the caller waits anyway, and a thread costs a start
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            self._write_safely(batch)
            self._wait()
        return self.packs_written[-1] if self.packs_written else None

    def sync_written(self):
        """fsync every pack and index this writer created, and their directory (sync=False deferred it
        to here: once, before a ref names them)."""
        paths = []
        for path, created in zip(self.packs_written, self._created):
            if created:
                paths += [path, path[:-len(".pack")] + ".idx"]
        sync_all(paths, self.pack_dir)

    def mark(self) -> int:
        """A point to discard() back to: the packs written so far stay."""
        return len(self.packs_written)

    def discard(self, mark: int = 0):
        """Forget what is pending and delete the packs written since `mark` (a failed file, a failed
        batch: no ref reaches them, and on a full disk they are what fills it). The caller promises
        that nothing handed out names their objects."""
        try:
            self._wait()
        except Exception:
            pass   # the write that failed already removed its own files
        for oid, _ in self._pending:
            self._ids.discard(oid)
        self._pending, self._pending_bytes = [], 0
        for path, oids, created in zip(self.packs_written[mark:], self._oids_written[mark:], self._created[mark:]):
            if self._ours(path, created):
                _remove_pack(path[:-len(".pack")])
            self._ids.difference_update(oids)
        del self.packs_written[mark:], self._oids_written[mark:], self._created[mark:]

    def release_keeps(self):
        """A ref reaches every object written: `git gc` may repack them as it likes from now on."""
        if self.keep:
            for path in self.packs_written:
                if keep_owner(path[:-len(".pack")] + ".keep") == os.getpid():
                    _unlink(path[:-len(".pack")] + ".keep")

    def _write(self, batch: list[tuple[str, bytes]]) -> tuple[str, bool]:
        """Write one pack + idx; return its path and whether this call created it (an identical pack,
        same objects in the same order, may already be there: another process's, never replaced)."""
        os.makedirs(self.pack_dir, exist_ok=True)
        tmp_pack = tmp_idx = name = None
        created = False
        try:
            pack_hash = new_hasher(self.algo)
            entries = []  # (oid, crc32, offset)
            fd, tmp_pack = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_pack_")
            with os.fdopen(fd, "wb") as f:
                header = b"PACK" + struct.pack(">II", 2, len(batch))
                f.write(header)
                pack_hash.update(header)
                offset = len(header)
                for oid, packed in batch:
                    entries.append((oid, zlib.crc32(packed), offset))
                    f.write(packed)
                    pack_hash.update(packed)
                    offset += len(packed)
                checksum = pack_hash.digest()
                f.write(checksum)
                f.flush()
                if self.sync:
                    os.fsync(f.fileno())
            name = os.path.join(self.pack_dir, "pack-" + checksum.hex())
            if self.keep:   # before the pack is visible: a gc never sees it unprotected
                with open(name + ".keep", "w", encoding="ascii") as f:
                    f.write(f"{KEEP_MARK}{os.getpid()}\n")
            if os.path.exists(name + ".idx"):
                _unlink(tmp_pack)
                tmp_pack = None
                return name + ".pack", False
            fd, tmp_idx = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_idx_")
            with os.fdopen(fd, "wb") as f:
                f.write(_encode_index(entries, checksum, self.algo))
                f.flush()
                if self.sync:
                    os.fsync(f.fileno())
            for tmp in (tmp_pack, tmp_idx):
                os.chmod(tmp, 0o444)
            # The .idx is what makes a pack visible, so it lands last.
            created = True
            os.replace(tmp_pack, name + ".pack")
            tmp_pack = None
            os.replace(tmp_idx, name + ".idx")
            tmp_idx = None
            if self.sync:
                fsync_dir(self.pack_dir)
        except BaseException:
            # A full disk must not stay full of our leftovers: nothing names this pack yet.
            for tmp in (tmp_pack, tmp_idx):
                if tmp is not None:
                    _unlink(tmp)
            if created:
                _remove_pack(name)
            elif name is not None and self.keep and keep_owner(name + ".keep") == os.getpid():
                _unlink(name + ".keep")
            raise
        return name + ".pack", True

    def _ours(self, path: str, created: bool) -> bool:
        """A pack this writer made and still answers for (with keep: the .keep names this process)."""
        return created and (not self.keep or keep_owner(path[:-len(".pack")] + ".keep") == os.getpid())


class PackStream:
    """One pack written as objects come, in constant memory (a PackWriter holds a batch): each object goes to a
    temporary file at once; finish() fills in the header's object count, hashes the file (read back, usually
    from the page cache) and makes the pack visible, with a .keep file naming this process first when
    keep=True. For an unknown, possibly large number of objects that should make one pack (the read cache)."""

    def __init__(self, objects_dir: str, algo: str, keep: bool = False, sync: bool = False):
        self.pack_dir = os.path.join(objects_dir, "pack")
        self.algo, self.keep, self.sync = algo, keep, sync
        self._file = None
        self._tmp: str | None = None
        self._entries: list[tuple[str, int, int]] = []   # (oid, crc32, offset)
        self._ids: set[str] = set()
        self._offset = 12
        self._name: str | None = None    # the finished pack, without its extension, if this stream created it
        self._keep: str | None = None    # the .keep file it wrote

    def add(self, kind: str, data: bytes | memoryview, oid: str | None = None) -> str:
        oid = oid or object_id(kind, data, self.algo)
        if oid in self._ids:
            return oid
        packed = _object_header(kind, len(data)) + zlib_stored(data)
        try:
            if self._file is None:
                os.makedirs(self.pack_dir, exist_ok=True)
                fd, self._tmp = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_pack_")
                self._file = os.fdopen(fd, "w+b")
                self._file.write(bytes(12))   # the header, once the count is known
            self._file.write(packed)
        except BaseException:
            self.discard()
            raise
        self._entries.append((oid, zlib.crc32(packed), self._offset))
        self._offset += len(packed)
        self._ids.add(oid)
        return oid

    def __contains__(self, oid: str) -> bool:
        return oid in self._ids

    def finish(self) -> str | None:
        """Make the pack visible (its .keep first); its path, or None when nothing was added."""
        if self._file is None:
            return None
        f, self._file = self._file, None
        try:
            with f:
                f.seek(0)
                f.write(b"PACK" + struct.pack(">II", 2, len(self._entries)))
                f.seek(0)
                pack_hash = new_hasher(self.algo)
                while block := f.read(1 << 20):
                    pack_hash.update(block)
                checksum = pack_hash.digest()
                f.seek(0, os.SEEK_END)
                f.write(checksum)
                f.flush()
                if self.sync:
                    os.fsync(f.fileno())
            os.chmod(self._tmp, 0o444)
            base = os.path.join(self.pack_dir, "pack-" + checksum.hex())
            if self.keep:   # before the pack is visible: a gc never sees it unprotected
                self._keep = base + ".keep"
                with open(self._keep, "w", encoding="ascii") as keep:
                    keep.write(f"{KEEP_MARK}{os.getpid()}\n")
            if os.path.exists(base + ".idx"):   # the same objects in the same order: that pack serves
                _unlink(self._tmp)
                return base + ".pack"
            fd, tmp_idx = tempfile.mkstemp(dir=self.pack_dir, prefix="tmp_idx_")
            try:
                with os.fdopen(fd, "wb") as idx:
                    idx.write(_encode_index(self._entries, checksum, self.algo))
                    idx.flush()
                    if self.sync:
                        os.fsync(idx.fileno())
                os.chmod(tmp_idx, 0o444)
                self._name = base
                os.replace(self._tmp, base + ".pack")   # the .idx, last, makes the pack visible
                os.replace(tmp_idx, base + ".idx")
            except BaseException:
                _unlink(tmp_idx)
                raise
            if self.sync:
                fsync_dir(self.pack_dir)
            return base + ".pack"
        except BaseException:
            self.discard()
            raise

    def release_keep(self):
        """A ref reaches every object: `git gc` may repack them as it likes."""
        if self._keep is not None and keep_owner(self._keep) == os.getpid():
            _unlink(self._keep)

    def discard(self):
        """Nothing names these objects: remove the temporary file, or the pack this stream created."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            _unlink(self._tmp)
        if self._name is not None and (not self.keep or keep_owner(self._name + ".keep") == os.getpid()):
            _remove_pack(self._name)
        else:
            self.release_keep()
        self._name = None


def _unlink(path: str):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_pack(base: str):
    """The index first: without it Git no longer sees the pack, so no reader is left with half of one."""
    for ext in (".idx", ".pack", ".keep"):
        _unlink(base + ext)


def keep_owner(path: str) -> int | None:
    """The process a .keep file we wrote protects the pack for (None: not ours, or not readable)."""
    if not _PACK_NAME.fullmatch(os.path.basename(path)):
        return None
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    pid = text[len(KEEP_MARK):]
    return int(pid) if text.startswith(KEEP_MARK) and pid.isdigit() else None


def release_dead_keeps(objects_dir: str, alive) -> int:
    """Remove our .keep files whose process is gone (alive(pid) is False); return how many. The caller
    has already recorded in a ref whatever of theirs a pointer names (journal.replay)."""
    pack_dir = os.path.join(objects_dir, "pack")
    try:
        names = [n for n in os.listdir(pack_dir) if n.endswith(".keep")]
    except FileNotFoundError:
        return 0
    released = 0
    for name in names:
        pid = keep_owner(os.path.join(pack_dir, name))
        if pid is not None and not alive(pid):
            _unlink(os.path.join(pack_dir, name))
            released += 1
    return released


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
