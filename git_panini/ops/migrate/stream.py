"""The rewrite's stream: `git fast-export --no-data` -> a conversion -> `git fast-import`, commit by commit."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass

from ...format import pointer as pointer_mod
from .attributes import PatternMatcher
from .blobs import BlobReader
from .errors import MigrateError

MARK_BASE = 1 << 40       # our blobs' marks, far above the commit marks fast-export hands out


@dataclass
class Counts:
    """What a rewrite went through and converted."""
    commits: int = 0
    converted: int = 0          # distinct blobs converted
    bytes: int = 0              # their file bytes


def unquote_path(raw: bytes) -> str:
    """A path as fast-export writes it (C-quoted when it holds special bytes) -> str (surrogateescape)."""
    if not raw.startswith(b'"'):
        return raw.decode("utf-8", "surrogateescape")
    escapes = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13,
               ord('"'): 34, ord("\\"): 92}
    out, body, i = bytearray(), raw[1:-1], 0
    while i < len(body):
        c = body[i]
        if c != 92:
            out.append(c)
            i += 1
        elif body[i + 1] in escapes:
            out.append(escapes[body[i + 1]])
            i += 2
        else:
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
    return out.decode("utf-8", "surrogateescape")


def quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-quoted when it holds a quote, a backslash, a control byte or a
    leading quote."""
    raw = path.encode("utf-8", "surrogateescape")
    if not any(b < 32 or b in (34, 92) for b in raw):
        return raw
    out = bytearray(b'"')
    for b in raw:
        out += b"\\" + bytes([b]) if b in (34, 92) else b"\\%03o" % b if b < 32 else bytes([b])
    return bytes(out + b'"')


class HistoryRewriter:
    """fast-export -> conversion -> fast-import. Nothing moves any ref until the stream has gone through."""

    def __init__(self, repo, conversion, matcher: PatternMatcher | None, blobs: BlobReader, on_commit=lambda: None):
        self.repo, self.conversion, self.matcher, self.blobs = repo, conversion, matcher, blobs
        self.on_commit = on_commit
        self.counts = Counts()
        self._marks: dict[str, bytes | None] = {}    # blob id -> our mark (b":N"), or None: kept as it is
        self._attributes: dict[tuple[str, str], bytes | None] = {}
        self._next_mark = MARK_BASE

    def run(self, revs: list[str], staging: str):
        """Stream the history of revs into the staging repository (its refs: the rewritten tips)."""
        errors = tempfile.TemporaryFile()
        self._export = subprocess.Popen(
            ["git", "--git-dir", self.repo.git_dir, "fast-export", "--no-data", "--use-done-feature", "--mark-tags",
             "--signed-tags=strip", "--tag-of-filtered-object=rewrite", "--reencode=no", *revs],
            stdout=subprocess.PIPE, stderr=errors)
        self._import = subprocess.Popen(
            ["git", "--git-dir", staging, "fast-import", "--quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        self._in, self._out = self._export.stdout, self._import.stdin
        try:
            try:
                self._stream()
            except MigrateError:
                if self._export.wait() != 0:   # fast-export's own reason, rather than "it stopped"
                    raise MigrateError(f"git fast-export failed: {_last_line(errors)}") from None
                raise
            if self._export.wait() != 0:
                raise MigrateError(f"git fast-export failed: {_last_line(errors)}")
            self.conversion.finish()
            self._out.write(b"done\n")
            self._out.close()
            if self._import.wait() != 0:
                raise MigrateError(f"git fast-import failed: {_last_line(errors)}")
        except BaseException:
            self.conversion.abort()
            # Killed before `done`: fast-import updates no ref (its partial pack is garbage for gc).
            for proc in (self._export, self._import):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            raise
        finally:
            errors.close()
        return self.counts

    def _stream(self):
        while line := self._in.readline():
            if line.startswith(b"commit "):
                self._commit(line)
            elif line == b"done\n":
                return
            else:
                self._out.write(line)
                if line.startswith(b"data "):
                    self._out.write(self._in.read(int(line[5:])))
        raise MigrateError("git fast-export stopped before the end of the history")

    def _commit(self, first: bytes):
        head, changes, rooted = [first], [], False
        while (line := self._in.readline()) not in (b"\n", b""):
            if line.startswith(b"data "):
                head += [line, self._in.read(int(line[5:]))]
            elif line.startswith((b"M ", b"D ", b"deleteall")):
                changes.append(line)
            else:
                rooted = rooted or line.startswith(b"from ")
                head.append(line)
        # Deletions before modifications: git fast-export writes `M dir/file` before `D dir` when a directory
        # replaces a file of the same name, and fast-import, applying them in order, would delete the new
        # directory (fast-export never names one path in both, so the reordering changes nothing else).
        changes.sort(key=lambda line: 0 if line.startswith(b"deleteall") else 1 if line.startswith(b"D ") else 2)
        out, attributes_seen = [], False
        for line in changes:
            if line.startswith(b"deleteall"):
                rooted, attributes_seen = False, False
                out.append(line)
            elif line.startswith(b"D "):
                if unquote_path(line[2:-1]) == ".gitattributes":
                    attributes_seen = True
                    out.append(self._attributes_change(None, line))
                else:
                    out.append(line)
            else:
                mode, dataref, raw_path = line[2:-1].split(b" ", 2)
                path = unquote_path(raw_path)
                if path == ".gitattributes" and mode in (b"100644", b"100755"):
                    attributes_seen = True
                    out.append(self._attributes_change(dataref.decode(), line))
                elif path.endswith("/.gitattributes") and mode in (b"100644", b"100755"):
                    out.append(self._attributes_change(dataref.decode(), line, path[:-len("/.gitattributes")]))
                elif mode in (b"100644", b"100755") and self._selected(path):
                    ref = self._blob(dataref.decode(), path)
                    out.append(line if ref is None else b"M %s %s %s\n" % (mode, ref, raw_path))
                else:
                    out.append(line)
        if not rooted and not attributes_seen:   # a root commit (or deleteall): its .gitattributes from scratch
            out.append(self._attributes_change(None, None))
        self._out.write(b"".join(head) + b"".join(l for l in out if l) + b"\n")
        self.counts.commits += 1
        self.on_commit()

    def _selected(self, path: str) -> bool:
        if pointer_mod.read_by_git(path):
            return False
        return self.matcher is None or self.matcher.match(path) is not None

    def _blob(self, oid: str, path: str) -> bytes | None:
        """Our mark for the converted blob (converted on first sight), or None to keep the blob."""
        if oid in self._marks:
            return self._marks[oid]
        converted = self.conversion.convert(oid, path)
        mark = None
        if converted is not None:
            size, blocks = self.conversion.blob_of(converted)
            mark = self._emit(size, blocks)
            self.counts.converted += 1
            self.counts.bytes += converted[1]
        self._marks[oid] = mark
        return mark

    def _emit(self, size: int, blocks) -> bytes:
        self._next_mark += 1
        mark = b":%d" % self._next_mark
        self._out.write(b"blob\nmark %s\ndata %d\n" % (mark, size))
        written = 0
        for block in blocks:
            written += len(block)
            self._out.write(block)
        if written != size:
            raise MigrateError(f"a converted file gave {written} bytes, not the {size} its pointer says")
        self._out.write(b"\n")
        return mark

    def _attributes_change(self, oid: str | None, original: bytes | None, folder: str = "") -> bytes | None:
        """The fast-import line that gives this commit its rewritten .gitattributes (of folder: nested)."""
        key = (oid or "", folder)
        if key not in self._attributes:
            content = self.blobs.read(oid) if oid else None
            new = self.conversion.attributes(content, folder)
            path = quote_path(f"{folder}/.gitattributes" if folder else ".gitattributes")
            if new == content:
                self._attributes[key] = None
            elif new is None:
                self._attributes[key] = b"D %s\n" % path
            else:
                self._attributes[key] = b"M 100644 %s %s\n" % (self._emit(len(new), [new]), path)
        return self._attributes[key] or original


def _last_line(file) -> str:
    file.seek(0)
    lines = [l.strip() for l in file.read().decode(errors="replace").splitlines() if l.strip()]
    fatal = [l for l in lines if l.startswith(("fatal:", "error:"))]
    return (fatal or lines or ["no message"])[-1]
