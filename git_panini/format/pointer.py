"""The pointer: the small text a user's branch holds in place of a tracked file (format git-panini/1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VERSION = "git-panini/1"
MAX_POINTER_SIZE = 1024
_KEY = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_HEX = re.compile(r"^[0-9a-f]+$")
# The pointer every clean writes (no extra keys), matched whole: its canonical form by construction, so a
# scan of 10,000 pointers need not split, check and re-encode each.
_PLAIN = re.compile(rb"version git-panini/1\nmanifest ([0-9a-f]{40}|[0-9a-f]{64})\noid sha256:([0-9a-f]{64})\n"
                    rb"size (0|[1-9][0-9]*)\n")


class PointerError(ValueError):
    """Text that starts like a pointer but is not a valid one."""


@dataclass(frozen=True)
class Pointer:
    manifest: str          # git oid of the manifest blob
    sha256: str            # 64 lowercase hex of the whole file
    size: int
    extra: dict = field(default_factory=dict)  # unknown keys, kept verbatim

    def encode(self) -> bytes:
        items = dict(self.extra)
        items.update(manifest=self.manifest, oid="sha256:" + self.sha256, size=str(self.size))
        lines = [f"version {VERSION}"] + [f"{k} {items[k]}" for k in sorted(items)]
        return ("\n".join(lines) + "\n").encode()


def looks_like_pointer(data: bytes) -> bool:
    # A pointer whose newlines became CRLF (autocrlf) still looks like one, so smudge warns and
    # verify reports it instead of passing it over as an ordinary file.
    header = b"version " + VERSION.encode()
    return len(data) < MAX_POINTER_SIZE and (data.startswith(header + b"\n") or data.startswith(header + b"\r\n"))


def parse(data: bytes) -> Pointer:
    """Parse canonical pointer text; raise PointerError with a one-line reason otherwise."""
    if len(data) >= MAX_POINTER_SIZE:
        raise PointerError(f"pointer is {len(data)} bytes, the limit is {MAX_POINTER_SIZE - 1}")
    plain = _PLAIN.fullmatch(data)
    if plain:
        return Pointer(plain[1].decode(), plain[2].decode(), int(plain[3]))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PointerError("pointer is not UTF-8") from None
    if not text.endswith("\n"):
        raise PointerError("pointer is truncated (no final newline)")
    lines = text[:-1].split("\n")
    if lines[0] != f"version {VERSION}":
        raise PointerError(f"first line is not 'version {VERSION}'")
    items: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(" ")
        if not sep or not _KEY.match(key) or not value or "\r" in value:
            raise PointerError(f"malformed pointer line {line[:60]!r}")
        if key in items:
            raise PointerError(f"duplicate key {key!r}")
        items[key] = value
    if list(items) != sorted(items):
        raise PointerError("pointer keys are not sorted")
    for key in ("manifest", "oid", "size"):
        if key not in items:
            raise PointerError(f"pointer lacks '{key}'")
    manifest = items.pop("manifest")
    if len(manifest) not in (40, 64) or not _HEX.match(manifest):
        raise PointerError(f"bad manifest id {manifest[:70]!r}")
    oid = items.pop("oid")
    if not oid.startswith("sha256:") or len(oid) != 71 or not _HEX.match(oid[7:]):
        raise PointerError(f"bad oid {oid[:80]!r}")
    size = items.pop("size")
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise PointerError(f"bad size {size[:30]!r}")
    pointer = Pointer(manifest, oid[7:], int(size), items)
    if pointer.encode() != data:
        raise PointerError("pointer is not in canonical form")
    return pointer


# Files git itself reads from commits and the index (never through a filter): as pointers they would break
# it, so the clean filter and migrate leave them as they are whatever the patterns say (`*`).
READ_BY_GIT = frozenset({".gitattributes", ".gitignore", ".gitmodules", ".mailmap"})


def read_by_git(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in READ_BY_GIT
