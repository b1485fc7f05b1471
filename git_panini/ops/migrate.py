"""`git panini migrate`: rewrite history so matching files become pointers (import) or plain blobs again (export).

The history streams through `git fast-export --no-data | <this> | git fast-import`: commits pass
through one at a time, unchanged files keep their blob ids, and each distinct blob that a pattern
selects is converted once (blob id -> new blob, cached). Import cleans the bytes exactly as `git add`
does (IngestSession: chunks into packs, one refs/panini/local commit); export reads them back through
reader.iter_file, verified. The top-level .gitattributes of every rewritten commit gains (import) or
loses (export) the patterns' lines; a nested one that sets a filter (git-lfs's `dir/.gitattributes`) gets
the same lines, made relative to its folder, at its end, so they win there too.

git fast-import writes into a staging repository that borrows this one's objects; only once the whole
stream has gone through do its packs move in and the refs move, in one compare-and-swap transaction
against the tips read at the start: a failure, or a commit made meanwhile (here or in another worktree),
leaves every ref as it was. The old tips stay under refs/panini-migrate/<time>/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from ..format import pointer as pointer_mod
from ..gitio.writer import IngestSession
from ..store.chunk_source import ChunkSource, iter_file, missing_chunks
from ..transfer.remote import remote_objects

ATTRS = "filter=panini diff=panini merge=panini -text"  # as `git panini track` writes them
EXCLUDED_ATTRS = "!filter !diff !merge !text"   # an excluded pattern: back to what git does by default
OLD_EXCLUDED_ATTRS = "!filter !diff !text"       # as 0.1 wrote them
BACKUP_PREFIX = "refs/panini-migrate/"
LFS_VERSION = b"version https://git-lfs.github.com/spec/v1\n"
LFS_ATTRS = {"filter=lfs", "diff=lfs", "merge=lfs", "-text"}
LFS_MAX_POINTER = 1024
MARK_BASE = 1 << 40       # our blobs' marks, far above the commit marks fast-export hands out
BLOCK = 4 << 20
# Git maps up to 8 GiB of packs at once by default: reading a whole history's blobs once would keep
# all of it mapped (resident: 2 GiB for a 2 GiB history). Small windows under a small limit bound it.
PACK_WINDOWS = ("-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m")
_LFS_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$", re.M)
_LFS_SIZE = re.compile(rb"^size (\d+)$", re.M)


class MigrateError(Exception):
    """What stops a migration, in one line; `usage` marks a bad argument or revision (exit 2)."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


def quote_pattern(pattern: str) -> str:
    # .gitattributes patterns cannot contain raw blanks: git uses [[:space:]] for them.
    return pattern.replace(" ", "[[:space:]]").replace("\t", "[[:space:]]")


def check_patterns(patterns: list[str]):
    """One line of .gitattributes per pattern: an empty or multi-line one would write others into history."""
    for pattern in patterns:
        if not pattern.strip() or "\n" in pattern or "\r" in pattern:
            raise MigrateError(f"not a pattern: {pattern!r}", usage=True)


def attribute_lines(include: list[str], exclude: list[str]) -> list[str]:
    """The .gitattributes lines that make git route the selected paths through the panini filter."""
    return ([f"{quote_pattern(p)} {ATTRS}" for p in include]
            + [f"{quote_pattern(p)} {EXCLUDED_ATTRS}" for p in exclude])


def relative_pattern(pattern: str, folder: str) -> str | None:
    """The pattern, as written in `folder/.gitattributes`, that matches what `pattern` matches at the top
    under folder; None when it cannot match there. A pattern without a slash (or starting `**/`) matches
    at every depth, one anchored at the top must start with the folder."""
    if "/" not in pattern.rstrip("/") or pattern.startswith("**/"):
        return pattern
    anchored = pattern.lstrip("/")
    if anchored.startswith(folder + "/"):
        return anchored[len(folder) + 1:]
    if anchored.endswith("/**") and (folder + "/").startswith(anchored[:-2]):
        return "**"     # everything below a folder above this one
    return None


def _sets_filter(line: str) -> bool:
    return any(a.startswith("filter=") and a != "filter=panini" for a in line.split()[1:])


def tracked_patterns(repo) -> list[str]:
    """The patterns HEAD's .gitattributes routes through the panini filter."""
    proc = repo.git("cat-file", "blob", "HEAD:.gitattributes", check=False)
    return [line.split()[0] for line in proc.stdout.decode(errors="replace").splitlines()
            if line.split() and "filter=panini" in line.split()[1:]]


# --- selecting paths ---------------------------------------------------------------------------------

class PatternMatcher:
    """Which include pattern selects a path (gitattributes semantics, decided by git itself): the patterns
    become a private attribute in a temporary attributes file, asked through one `git check-attr --stdin`."""

    ATTR = "panini-migrate-pattern"

    def __init__(self, repo, include: list[str], exclude: list[str]):
        self.include = include
        fd, self._file = tempfile.mkstemp(prefix="panini-migrate-", suffix=".attributes")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for i, pattern in enumerate(include):
                f.write(f"{quote_pattern(pattern)} {self.ATTR}={i}\n")
            for pattern in exclude:
                f.write(f"{quote_pattern(pattern)} -{self.ATTR}\n")
        self._proc = subprocess.Popen(
            ["git", "--git-dir", repo.git_dir, "-c", f"core.attributesFile={self._file}",
             "check-attr", "-z", "--stdin", self.ATTR],
            cwd=repo.work_tree or repo.git_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "GIT_FLUSH": "1"})
        self._cache: dict[str, int | None] = {}

    def match(self, path: str) -> int | None:
        """The index of the include pattern that selects path, or None."""
        if path in self._cache:
            return self._cache[path]
        self._proc.stdin.write(path.encode("utf-8", "surrogateescape") + b"\0")
        self._proc.stdin.flush()
        fields = [self._read_field() for _ in range(3)]   # path, attribute, value
        value = fields[2]
        found = int(value) if value.isdigit() else None
        self._cache[path] = found
        return found

    def _read_field(self) -> str:
        out = bytearray()
        while (byte := self._proc.stdout.read(1)) not in (b"\0", b""):
            out += byte
        return out.decode("utf-8", "surrogateescape")

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()
        os.unlink(self._file)


# --- reading blobs -----------------------------------------------------------------------------------

class BlobStream:
    """Blob sizes and contents through one `git cat-file --batch-command`, contents streamed in blocks (a
    3 GiB blob is never in memory)."""

    def __init__(self, repo):
        self._proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, *PACK_WINDOWS, "cat-file", "--batch-command"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _ask(self, command: str, oid: str) -> int:
        self._proc.stdin.write(f"{command} {oid}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise MigrateError(f"blob {oid} is missing from this repository")
        return int(header[2])

    def size(self, oid: str) -> int:
        return self._ask("info", oid)

    def blocks(self, oid: str):
        """The blob's bytes in blocks; the generator must be consumed to its end before the next request."""
        left = self._ask("contents", oid)
        while left:
            data = self._proc.stdout.read(min(BLOCK, left))
            if not data:
                raise MigrateError("git cat-file stopped early")
            left -= len(data)
            yield data
        self._proc.stdout.read(1)   # the newline after the contents

    def read(self, oid: str) -> bytes:
        return b"".join(self.blocks(oid))

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()


def lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """(sha256, size) of a git-lfs pointer, else None."""
    if not data.startswith(LFS_VERSION) or len(data) >= LFS_MAX_POINTER:
        return None
    oid, size = _LFS_OID.search(data), _LFS_SIZE.search(data)
    return (oid.group(1).decode(), int(size.group(1))) if oid and size else None


def _file_blocks(path: str):
    with open(path, "rb") as f:
        while data := f.read(BLOCK):
            yield data


# --- the two conversions -----------------------------------------------------------------------------

@dataclass
class Counts:
    commits: int = 0
    converted: int = 0          # distinct blobs converted
    bytes: int = 0              # their file bytes


def _newline(content: bytes | None) -> str:
    """The line ending a .gitattributes uses (CRLF ones stay CRLF: export then gives back the same blob)."""
    return "\r\n" if content and b"\r\n" in content else "\n"


class ImportConversion:
    """Plain blobs and git-lfs pointers -> git-panini pointers; .gitattributes gains the patterns' lines."""

    verb = "import"

    def __init__(self, repo, blobs: BlobStream, include: list[str], exclude: list[str]):
        self.repo, self.blobs = repo, blobs
        self.session = IngestSession(repo)
        self.lfs_objects = os.path.join(repo.common_dir, "lfs", "objects")
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
        stored = os.path.join(self.lfs_objects, sha256[:2], sha256[2:4], sha256)
        if not os.path.isfile(stored):
            raise MigrateError(f"{path}: git-lfs object {sha256} is not in .git/lfs/objects "
                               "(fetch it first: git lfs fetch --all)")
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
        lines = (content or b"").decode("utf-8", "surrogateescape").splitlines()
        if folder and not any(l.split() and _sets_filter(l) for l in lines):
            return content    # nothing here can override the top-level lines
        ours, replaced = self.lines, self._replaced
        if folder:
            ours = [f"{quote_pattern(rel)} {rest}" for p, rest in self._patterns
                    if (rel := relative_pattern(p, folder)) is not None]
            replaced = {l.split()[0] for l in ours}
        kept, extras = [], {}    # extras: what else a replaced git-lfs line said (`lockable`), kept on ours
        for line in lines:
            fields = line.split()
            if fields and fields[0] in replaced and "filter=lfs" in fields:
                more = extras.setdefault(fields[0], [])
                more += [a for a in fields[1:] if a not in LFS_ATTRS and a not in more]
            else:
                kept.append(line)
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

    verb = "export"

    def __init__(self, repo, blobs: BlobStream, include: list[str], exclude: list[str]):
        from ..transfer.remote import default_remote
        self.repo, self.blobs = repo, blobs
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
        lines = content.decode("utf-8", "surrogateescape").splitlines()
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


# --- the stream ----------------------------------------------------------------------------------------

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

    def __init__(self, repo, conversion, matcher: PatternMatcher | None, blobs: BlobStream, on_commit=lambda: None):
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


# --- refs, working tree -------------------------------------------------------------------------------

def resolve_refs(repo, refs: list[str], everything: bool) -> list[str]:
    """Full names of the branches and tags to rewrite: those given, every one (--everything), or HEAD's branch."""
    if everything:
        if refs:
            raise MigrateError("give REFs or --everything, not both", usage=True)
        out = repo.git("for-each-ref", "--format=%(refname)", "refs/heads/", "refs/tags/").stdout.decode().split()
        if not out:
            raise MigrateError("nothing to migrate: no branch or tag has a commit")
        return out
    if not refs:
        head = repo.git("symbolic-ref", "-q", "HEAD", check=False).stdout.decode().strip()
        if not head:
            raise MigrateError("HEAD is detached: name the branches to rewrite, or use --everything", usage=True)
        if repo.ref(head) is None:
            raise MigrateError(f"nothing to migrate: {head} has no commit yet")
        return [head]
    names = []
    for ref in refs:
        proc = repo.git("rev-parse", "--verify", "--quiet", "--symbolic-full-name", "--end-of-options", ref,
                        check=False)
        name = proc.stdout.decode().strip()
        if proc.returncode != 0 or not name.startswith(("refs/heads/", "refs/tags/")):
            raise MigrateError(f"unknown branch or tag {ref!r}", usage=True)
        names.append(name)
    return sorted(set(names))


def require_clean(repo):
    """Refuse a working tree whose changes `git reset --hard` would throw away after the rewrite."""
    if repo.work_tree is None:
        return
    proc = repo.git("status", "--porcelain", "-z", "--untracked-files=no")
    if proc.stdout.strip(b"\0"):
        raise MigrateError("the working tree has uncommitted changes: commit or stash them first")
    if os.path.exists(os.path.join(repo.work_tree, ".gitattributes")) and \
            repo.git("ls-files", "--error-unmatch", "--", ".gitattributes", check=False).returncode != 0:
        raise MigrateError(".gitattributes is not committed: commit or move it first")


def _backup(repo, refs: list[str]) -> tuple[str, dict[str, str]]:
    """Keep the old tips under refs/panini-migrate/<time>/<ref> (what `git panini migrate` prints to undo)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"{BACKUP_PREFIX}{stamp}/"
    n = 1
    while repo.git("for-each-ref", "--count=1", prefix, check=False).stdout.strip():
        n += 1
        prefix = f"{BACKUP_PREFIX}{stamp}-{n}/"
    tips = {}
    for ref in refs:
        tips[ref] = repo.git("rev-parse", "--verify", ref).stdout.decode().strip()
    repo.git("update-ref", "--stdin", input="".join(f"create {prefix}{r} {o}\n" for r, o in tips.items()).encode())
    return prefix, tips


def _drop_backup(repo, prefix: str, tips: dict[str, str]):
    repo.git("update-ref", "--stdin", input="".join(f"delete {prefix}{r}\n" for r in tips).encode(), check=False)


def refuse_other_worktrees(repo, names: list[str]):
    """A branch checked out in another worktree would have its old files staged there as changes by the
    rewrite, and committed back by the next commit: refuse, as `git branch -f` does."""
    here = os.path.realpath(repo.work_tree) if repo.work_tree else None
    out = repo.git("worktree", "list", "--porcelain", "-z").stdout.decode("utf-8", "surrogateescape")
    tree = None
    for line in out.split("\0"):
        if line.startswith("worktree "):
            tree = line[len("worktree "):]
        elif line.startswith("branch ") and line[len("branch "):] in names and os.path.realpath(tree) != here:
            raise MigrateError(f"{line[len('branch '):]} is checked out in the worktree {tree}: "
                               "switch it to another branch (or migrate from there) first")


def _staging_repo(repo, prefix: str) -> str:
    """An empty bare repository under .git/panini/ that sees this one's objects (alternates): fast-import
    writes there, so nothing here changes before the rewrite is complete."""
    path = os.path.join(repo.panini_dir, "migrate-" + prefix[len(BACKUP_PREFIX):].strip("/"))
    fmt = "sha256" if repo.hex_len == 64 else "sha1"
    subprocess.run(["git", "init", "-q", "--bare", f"--object-format={fmt}", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(path, "objects", "info", "alternates"), "w", encoding="utf-8") as f:
        f.write(os.path.abspath(repo.objects_dir) + "\n")
    return path


def _move_objects(source: str, target: str):
    """Move a repository's objects into another's (same file system): packs, and the loose objects fast-import
    unpacks a small import into. A pack's .pack (and .rev) go before its .idx: git finds a pack by its index."""
    packs = os.path.join(source, "pack")
    for name in sorted(os.listdir(packs), key=lambda n: n.endswith(".idx")):
        if name.endswith((".pack", ".rev", ".idx")):
            os.replace(os.path.join(packs, name), os.path.join(target, "pack", name))
    for fan in os.listdir(source):
        if len(fan) == 2 and os.path.isdir(os.path.join(source, fan)):
            os.makedirs(os.path.join(target, fan), exist_ok=True)
            for name in os.listdir(os.path.join(source, fan)):
                os.replace(os.path.join(source, fan, name), os.path.join(target, fan, name))


def _move_refs(repo, staging: str, tips: dict[str, str]) -> list[str]:
    """Bring the staging repository's packs in, then move every rewritten ref from its old tip to its new one
    in one transaction (none moves if any of them changed since the start). Returns the refs that moved."""
    out = subprocess.run(["git", "--git-dir", staging, "for-each-ref", "--format=%(objectname) %(refname)"],
                         check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")
    new = {ref: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}
    moves = {ref: new[ref] for ref in tips if new.get(ref, tips[ref]) != tips[ref]}
    if not moves:
        return []
    _move_objects(os.path.join(staging, "objects"), repo.objects_dir)
    proc = repo.git("update-ref", "--stdin", check=False,
                    input="".join(f"update {ref} {oid} {tips[ref]}\n" for ref, oid in moves.items()).encode())
    if proc.returncode != 0:
        moved = [ref for ref in moves if repo.ref(ref) != tips[ref]]
        raise MigrateError(f"{', '.join(moved) or 'a ref'} changed while migrating (a commit made meanwhile?): "
                           "no ref was rewritten; run it again")
    return list(moves)


@dataclass
class MigrateResult:
    refs: list[str]
    changed: list[str]
    backup: str | None
    counts: Counts
    checked_out: bool


def migrate(repo, mode: str, include: list[str], exclude: list[str], refs: list[str], everything: bool,
            progress=None) -> MigrateResult:
    """Rewrite the refs' history (mode 'import' or 'export'); progress(total_commits) -> a per-commit callback."""
    check_patterns(include + exclude)
    if mode == "import":
        include = include or tracked_patterns(repo)
        if not include:
            raise MigrateError("give --include PATTERN (e.g. --include '*.psd'), or track patterns first", usage=True)
        if not repo.config_get("filter.panini.process"):
            raise MigrateError("the panini filter is not installed here (run: git panini install)")
    names = resolve_refs(repo, refs, everything)
    require_clean(repo)
    refuse_other_worktrees(repo, names)
    total = int(repo.git("rev-list", "--count", *names, "--").stdout.decode().strip() or 0)
    on_commit = progress(total) if progress else (lambda: None)
    prefix, tips = _backup(repo, names)
    staging = _staging_repo(repo, prefix)
    blobs = BlobStream(repo)
    matcher = PatternMatcher(repo, include, exclude) if include or exclude else None
    conversion = (ImportConversion if mode == "import" else ExportConversion)(repo, blobs, include, exclude)
    changed = []
    try:
        counts = HistoryRewriter(repo, conversion, matcher, blobs, on_commit).run(names, staging)
        # Nothing converted: only .gitattributes lines would change, which is not worth new commit ids.
        if counts.converted:
            changed = _move_refs(repo, staging, tips)
    finally:
        if not changed:
            _drop_backup(repo, prefix, tips)
        blobs.close()
        if matcher is not None:
            matcher.close()
        shutil.rmtree(staging, ignore_errors=True)
    head = repo.git("symbolic-ref", "-q", "HEAD", check=False).stdout.decode().strip()
    checked_out = repo.work_tree is not None and head in changed
    if checked_out:
        # The tree was clean: the new HEAD's files are the same bytes, now through (or out of) the filter.
        repo.git(*PACK_WINDOWS, "reset", "--hard", "-q")
    return MigrateResult(names, changed, prefix if changed else None, counts, checked_out)


# --- info ----------------------------------------------------------------------------------------------

@dataclass
class InfoRow:
    pattern: str
    blobs: int = 0
    paths: set = field(default_factory=set)
    bytes: int = 0
    lfs: int = 0             # of which git-lfs pointers (counted at their objects' size)

    def as_dict(self) -> dict:
        return {"pattern": self.pattern, "blobs": self.blobs, "paths": len(self.paths), "bytes": self.bytes,
                "lfs_pointers": self.lfs}


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return f"*{name[name.rindex('.'):]}" if "." in name.lstrip(".") else name


def _files_in_history(repo, names: list[str]):
    """(blob id, path) of every regular file any commit of the refs holds, each pair once: what the rewrite
    visits. (rev-list --objects would name a blob under one path only, however many it sits at.)"""
    proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, "log", "--raw", "-z", "--no-abbrev", "--no-renames",
                             "--root", "--diff-merges=first-parent", "--format=", *names, "--"],
                            stdout=subprocess.PIPE)
    seen, meta = set(), None
    try:
        for token in _split_nul(proc.stdout):
            if meta is not None:
                fields, meta = meta.split(), None
                if fields[1] in ("100644", "100755") and fields[4] != "D" and (fields[3], token) not in seen:
                    seen.add((fields[3], token))
                    yield fields[3], token
            elif token.startswith(":"):
                meta = token
    finally:
        proc.stdout.close()
        proc.wait()


def _split_nul(stream):
    rest = b""
    while block := stream.read(1 << 16):
        *tokens, rest = (rest + block).split(b"\0")
        for token in tokens:
            yield token.lstrip(b"\n").decode("utf-8", "surrogateescape")


def info(repo, include: list[str], exclude: list[str], refs: list[str], everything: bool) -> list[InfoRow]:
    """What `migrate import` would convert: per include pattern (else per extension) blobs, paths and bytes."""
    check_patterns(include + exclude)
    names = resolve_refs(repo, refs, everything)
    rows: dict[str, InfoRow] = {}
    matcher = PatternMatcher(repo, include, exclude) if include else None
    blobs = BlobStream(repo)
    counted: set[tuple[str, str]] = set()    # (row, blob): a blob counts once per row, at every path
    try:
        for oid, path in _files_in_history(repo, names):
            if pointer_mod.read_by_git(path):
                continue    # a file git reads itself: import leaves it
            if matcher is not None:
                index = matcher.match(path)
                if index is None:
                    continue
                key = include[index]
            else:
                key = _extension(path)
            size, lfs = blobs.size(oid), False
            if size < LFS_MAX_POINTER:
                data = blobs.read(oid)
                if pointer_mod.looks_like_pointer(data) or not data:
                    continue
                if (found := lfs_pointer(data)) is not None:
                    size, lfs = found[1], True
            row = rows.setdefault(key, InfoRow(key))
            row.paths.add(path)
            if (key, oid) not in counted:
                counted.add((key, oid))
                row.blobs += 1
                row.bytes += size
                row.lfs += lfs
    finally:
        blobs.close()
        if matcher is not None:
            matcher.close()
    return sorted(rows.values(), key=lambda r: (-r.bytes, r.pattern))
