"""Git objects by hand: ids, tree and commit encoding, and loose-object writes, for SHA-1 and SHA-256 repos."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zlib
from dataclasses import dataclass

from .durability import fsync_dir

MODE_BLOB = "100644"
MODE_TREE = "40000"


class ObjectFormatError(Exception):
    """A stored object does not parse as the type it claims to be."""


def new_hasher(algo: str):
    return hashlib.sha1() if algo == "sha1" else hashlib.sha256()


def object_id(kind: str, data: bytes | memoryview, algo: str) -> str:
    h = new_hasher(algo)
    h.update(b"%s %d\0" % (kind.encode(), len(data)))
    h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == MODE_TREE


def _tree_sort_key(entry: TreeEntry) -> bytes:
    # Git sorts tree entries as if directory names ended in '/'.
    name = entry.name.encode("utf-8", "surrogateescape")
    return name + b"/" if entry.is_tree else name


def encode_tree(entries) -> bytes:
    out = bytearray()
    for e in sorted(entries, key=_tree_sort_key):
        # surrogateescape: a name that is not UTF-8 (decode_tree kept its bytes) is written back as it was.
        out += b"%s %s\0" % (e.mode.encode(), e.name.encode("utf-8", "surrogateescape")) + bytes.fromhex(e.oid)
    return bytes(out)


def decode_tree(data: bytes, algo: str) -> list[TreeEntry]:
    raw_len = 20 if algo == "sha1" else 32
    entries, pos = [], 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        nul = data.find(b"\0", sp + 1)
        if sp < 0 or nul < 0 or nul + 1 + raw_len > len(data):
            raise ObjectFormatError("malformed tree object")
        mode = data[pos:sp].decode()
        entries.append(TreeEntry(data[sp + 1:nul].decode("utf-8", "surrogateescape"),
                                 "40000" if mode == "040000" else mode,
                                 data[nul + 1:nul + 1 + raw_len].hex()))
        pos = nul + 1 + raw_len
    return entries


def signature(name: str = "git-panini", email: str = "panini@localhost") -> str:
    name = os.environ.get("GIT_COMMITTER_NAME", name)
    email = os.environ.get("GIT_COMMITTER_EMAIL", email)
    offset = -time.timezone if not time.localtime().tm_isdst else -time.altzone
    sign = "+" if offset >= 0 else "-"
    return "%s <%s> %d %s%02d%02d" % (name, email, int(time.time()), sign, abs(offset) // 3600,
                                       abs(offset) % 3600 // 60)


BULK_SIGNATURE = "git-panini <panini@localhost> 0 +0000"


def encode_commit(tree: str, parents: list[str], message: str, content_addressed: bool = False) -> bytes:
    """content_addressed: a fixed signature, so the same tree and message always give the same
    commit (bulk refs: the same blobs, written twice, are one ref)."""
    sig = BULK_SIGNATURE if content_addressed else signature()
    lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
    lines += [f"author {sig}", f"committer {sig}", "", message]
    return ("\n".join(lines) + "\n").encode()


def commit_tree_and_parents(data: bytes) -> tuple[str, list[str]]:
    tree, parents = None, []
    for line in data.split(b"\n"):
        if not line:
            break
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = value.decode()
        elif key == b"parent":
            parents.append(value.decode())
    if tree is None:
        raise ObjectFormatError("commit without a tree")
    return tree, parents


def write_loose(objects_dir: str, kind: str, data: bytes, algo: str, sync: bool = False) -> str:
    """Write one object as a loose file (atomically) unless it exists; return its id. sync: fsync the
    file and its directory before returning (core.fsync's loose-object), so a ref may name it."""
    oid = object_id(kind, data, algo)
    path = os.path.join(objects_dir, oid[:2], oid[2:])
    if os.path.exists(path):
        return oid
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="tmp_obj_")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(zlib.compress(b"%s %d\0" % (kind.encode(), len(data)) + data, 1))
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)   # a full disk: never leave the temporary file behind
        raise
    if sync:
        fsync_dir(os.path.dirname(path))
    return oid
