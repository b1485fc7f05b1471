"""One Git repository as git-panini sees it: paths, object format, git commands, object reads and refs."""

from __future__ import annotations

import os
import re
import subprocess
import threading

from ..util import crash_points
from .durability import FsyncPolicy
from .objects import TreeEntry, decode_tree, write_loose

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CONFIG_INT = re.compile(r"\s*(-?[0-9]+)([kKmMgG]?)\s*")
# Where git looks for a name it does not find as it is (refs.c, ref_rev_parse_rules): a full ref name that is
# absent resolves to the first of these that exists, so a tag named `refs/panini/local`, which anyone with push
# access can create and every clone fetches, would stand in for a clone's own absent refs/panini/local.
_DWIM_RULES = ("refs/{}", "refs/tags/{}", "refs/heads/{}", "refs/remotes/{}", "refs/remotes/{}/HEAD")
_KIND_BY_PYGIT2_TYPE = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}
PACK_BLOBS_FROM = 64   # write_blobs() packs this many blobs or more
LIGHT_READS = 1000     # objects read through git cat-file before a Repo loads libgit2 (see Repo.reader)
# No tree git-panini writes comes near this (a fan directory of 350 000 entries); a larger one from a
# remote is refused unread, so memory stays bounded.
MAX_TREE_SIZE = 16 << 20


class GitError(Exception):
    """A git command failed; the message is git's own first error line."""


class NotARepository(GitError):
    pass


class ObjectTooLarge(Exception):
    """An object is larger than its format allows: refused before it is read into memory."""


def run_git(args, cwd=None, input=None, check=True, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=env)
    if check and proc.returncode != 0:
        raise GitError(f"git {_subcommand(args)} failed: {first_error_line(proc.stderr, proc.returncode)}")
    return proc


def _is_partial_clone(repo) -> bool:
    config = repo.config()
    values = [v for k, v in config.items() if k == "extensions.partialclone"
              or (k.startswith("remote.") and k.endswith(".promisor"))]
    return any(v.strip().lower() not in ("", "false", "no", "off", "0") for v in values)


def config_key(key: str) -> str:
    """A config key as `git config --list` spells it: section and name lower case, a subsection as it is."""
    section, _, rest = key.partition(".")
    middle, _, name = rest.rpartition(".")
    return f"{section.lower()}.{middle + '.' if middle else ''}{name.lower()}"


def first_error_line(stderr: bytes, code: int) -> str:
    """Git's own reason: its first 'fatal:'/'error:' line, else its last line."""
    lines = [l.strip() for l in stderr.decode(errors="replace").splitlines() if l.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else f"exit {code}"


def _subcommand(args) -> str:
    """The git subcommand among args (skipping options such as --git-dir X and -c k=v)."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("--git-dir", "-c", "-C") else 1
    return args[i] if i < len(args) else "?"


MWINDOW_SIZE = 8 << 20          # bytes of a pack file libgit2 maps at once
MWINDOW_MAPPED_LIMIT = 32 << 20  # bytes of pack files it keeps mapped before unmapping the least used


class Pygit2Reader:
    """Object reads through libgit2 (fast, in-process); SHA-1 repositories only."""

    def __init__(self, git_dir: str):
        import pygit2
        # Return stored bytes as they are, like `git cat-file` does: libgit2's own re-hash would turn
        # a corrupt object into an untyped GitError (a traceback), while callers that must trust the
        # content check its id themselves (ChunkSource names the file, chunk and offset).
        pygit2.option(pygit2.enums.Option.ENABLE_STRICT_HASH_VERIFICATION, False)
        # libgit2 maps pack files 1 GiB at a time and keeps up to 8 GiB mapped: streaming a big file's
        # chunks out of a pack kept every page read resident (a 256 MiB smudge peaked at 306 MiB RSS).
        pygit2.option(pygit2.enums.Option.SET_MWINDOW_SIZE, MWINDOW_SIZE)
        pygit2.option(pygit2.enums.Option.SET_MWINDOW_MAPPED_LIMIT, MWINDOW_MAPPED_LIMIT)
        self._odb = pygit2.Repository(git_dir).odb

    def read(self, oid: str) -> tuple[str, bytes] | None:
        try:
            kind, data = self._odb.read(oid)
        except KeyError:
            return None
        return _KIND_BY_PYGIT2_TYPE[kind], data

    def exists(self, oid: str) -> bool:
        return oid in self._odb

    def size(self, oid: str) -> int | None:
        try:
            return self._odb.read_header(oid)[1]
        except KeyError:
            return None

    def close(self):
        pass


class CatFileReader:
    """Object reads through one long-running `git cat-file --batch-command`; works for any object format.
    options: git's own, given before `cat-file` (`-c core.packedGitLimit=...` bounds what it keeps mapped)."""

    def __init__(self, git_dir: str, options: tuple[str, ...] = ()):
        self._proc = subprocess.Popen(["git", "--git-dir", git_dir, *options, "cat-file", "--batch-command"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lock = threading.Lock()

    def _header(self, command: str, oid: str) -> list[bytes]:
        """The reply's header: [oid, kind, size], or ["<oid>", "missing"] / "ambiguous"."""
        self._proc.stdin.write(f"{command} {oid}\n".encode())
        self._proc.stdin.flush()
        return self._proc.stdout.readline().split()

    def read(self, oid: str) -> tuple[str, bytes] | None:
        with self._lock:
            header = self._header("contents", oid)
            if len(header) != 3:
                return None
            data = self._proc.stdout.read(int(header[2]) + 1)[:-1]
        return header[1].decode(), data

    def info(self, oid: str) -> tuple[str, int] | None:
        """(kind, size) of the object, None where it is not here."""
        with self._lock:
            header = self._header("info", oid)
        return None if len(header) != 3 else (header[1].decode(), int(header[2]))

    def exists(self, oid: str) -> bool:
        return self.info(oid) is not None

    def resolve(self, name: str) -> str | None:
        """The object id a name (a ref, `ref^{commit}`) stands for now, None where it names nothing."""
        if not name or any(c in name for c in "\n\r\0") or name != name.strip():
            return None   # one line of the protocol, nothing that could be read as another request
        with self._lock:
            header = self._header("info", name)
        # "<oid> <type> <size>"; "<name> missing" has three words too where the name has a space
        return header[0].decode() if len(header) == 3 and header[2].isdigit() else None

    def size(self, oid: str) -> int | None:
        found = self.info(oid)
        return None if found is None else found[1]

    def stream(self, oid: str, kind: str, block: int):
        """The bytes of an object of this kind in blocks of at most `block` (a 3 GiB blob is never in
        memory); GitError where it is not here (or of another kind). Read the blocks to the end before the
        next request."""
        with self._lock:
            header = self._header("contents", oid)
            if len(header) != 3:
                raise GitError(f"{kind} {oid} is missing from this repository")
            left, wanted = int(header[2]), header[1] == kind.encode()
            while left:
                data = self._proc.stdout.read(min(block, left))
                if not data:
                    raise GitError("git cat-file stopped early")
                left -= len(data)
                if wanted:
                    yield data
            self._proc.stdout.read(1)   # the newline after the contents
            if not wanted:   # read past it all the same: the next request gets its own reply
                raise GitError(f"{kind} {oid} is missing from this repository")

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()


class Repo:
    def __init__(self, path: str = "."):
        try:
            # One git for the paths (a second only in a bare repository, which has no top level to show).
            asked = ["rev-parse", "--absolute-git-dir", "--git-common-dir", "--show-object-format",
                     "--is-bare-repository"]
            proc = run_git([*asked, "--show-toplevel"], cwd=path, check=False)
            out = proc.stdout if proc.returncode == 0 else run_git(asked, cwd=path).stdout
        except (GitError, FileNotFoundError) as e:
            raise NotARepository(f"not a git repository: {os.path.abspath(path)}") from e
        git_dir, common, algo, bare, *top = out.decode().split("\n")
        self.git_dir = git_dir
        self.common_dir = os.path.normpath(os.path.join(path, common)) if not os.path.isabs(common) else common
        self.algo = algo
        self.bare = bare == "true"
        if not self.bare and not (top and top[0]):   # inside .git of a work tree: git's own error, as before
            top = [run_git(["rev-parse", "--show-toplevel"], cwd=path).stdout.decode().strip()]
        self.work_tree = None if self.bare else top[0]
        self.objects_dir = os.path.join(self.common_dir, "objects")
        self.panini_dir = os.path.join(self.common_dir, "panini")
        self._config: dict[str, str] | None = None
        self._bare_keys: set[str] = set()
        # A partial clone (--filter=blob:none) fetches missing objects lazily; only git cat-file does that.
        self.partial = _is_partial_clone(self)
        # Reads go through `git cat-file` for the first LIGHT_READS objects, then through libgit2 where it can
        # read this repository: loading pygit2 (40-70 ms) costs more than a short session's reads (a git add,
        # a status, a check of the remote that reads its thousands of objects through read_many).
        self._light_reads: int | None = 0 if algo == "sha1" and not self.partial else None
        self._reader: Pygit2Reader | CatFileReader | None = None
        self._retired: list[CatFileReader] = []   # closed with the repo: another thread may be reading from it
        self._refs: CatFileReader | None = None     # resolves ref names (ref())
        self.hex_len = 40 if algo == "sha1" else 64
        self._fsync: FsyncPolicy | None = None

    @property
    def reader(self) -> Pygit2Reader | CatFileReader:
        """Opened on first use: git cat-file, then libgit2 after LIGHT_READS reads (see __init__)."""
        if self._light_reads is not None:
            self._light_reads += 1
            if self._light_reads > LIGHT_READS:
                self._light_reads = None
                if self._reader is not None:
                    self._retired.append(self._reader)
                self._reader = Pygit2Reader(self.git_dir)
        if self._reader is None:
            self._reader = CatFileReader(self.git_dir)
        return self._reader

    @property
    def fsync(self) -> FsyncPolicy:
        """What Git's core.fsync says to fsync before a ref names it (read once)."""
        if self._fsync is None:
            self._fsync = FsyncPolicy.from_repo(self)
        return self._fsync

    # --- git commands -------------------------------------------------------------------------
    def git(self, *args, input=None, check=True, env=None) -> subprocess.CompletedProcess:
        return run_git(["--git-dir", self.git_dir, *args], cwd=self.work_tree or self.git_dir,
                       input=input, check=check, env=env)

    def config(self) -> dict[str, str]:
        """The repository's configuration as Git sees it, read once per process (as git itself does): one
        `git config --list` instead of a git per key on every start of the filter and hooks."""
        if self._config is None:
            out = run_git(["--git-dir", self.git_dir, "config", "--list", "-z"], cwd=self.work_tree or self.git_dir,
                          check=False).stdout.decode("utf-8", "surrogateescape")
            config, self._bare_keys = {}, set()
            for entry in out.split("\0"):
                if entry:
                    key, newline, value = entry.partition("\n")
                    config[key] = value   # the last one wins, as for git config --get
                    # A key with no "=" (`required` alone): true to git, where `required =` is false.
                    (self._bare_keys.add if not newline else self._bare_keys.discard)(key)
            self._config = config
        return self._config

    def config_get(self, key: str, default: str | None = None) -> str | None:
        value = self.config().get(config_key(key))
        return default if value is None else value.strip()

    def config_int(self, key: str) -> int | None:
        """The key as `git config --int` reads it (k, m, g suffixes): None when unset; ValueError when it
        is not such a number. From the configuration read once, not a git each."""
        value = self.config_get(key)
        if value is None:
            return None
        match = _CONFIG_INT.fullmatch(value)
        if match is None:
            raise ValueError(f"{key} is not a number: {value!r}")
        return int(match[1]) << {"": 0, "k": 10, "m": 20, "g": 30}[match[2].lower()]

    def config_bool(self, key: str) -> bool:
        """The key as `git config --type=bool` reads it; unset or not a boolean is false."""
        name = config_key(key)
        value = self.config().get(name)
        return name in self._bare_keys or (value or "").strip().lower() in ("true", "yes", "on", "1")

    # --- objects ------------------------------------------------------------------------------
    def is_oid(self, oid) -> bool:
        """A full lowercase object id of this repository's format. Anything else (a name read from a hostile
        tree: not hex, not UTF-8, a newline that would start another cat-file command) is no object here."""
        return isinstance(oid, str) and len(oid) == self.hex_len and _OID.fullmatch(oid) is not None

    def read(self, oid: str) -> tuple[str, bytes] | None:
        return self.reader.read(oid) if self.is_oid(oid) else None

    def read_kind(self, oid: str, kind: str, limit: int | None = None) -> bytes | None:
        """The object's bytes if it is here and of this kind; with a limit, a larger object raises
        ObjectTooLarge before it is read (a 3 GiB blob named where a manifest belongs)."""
        if not self.is_oid(oid):
            return None
        if limit is not None:
            size = self.reader.size(oid)
            if size is None:
                return None
            if size > limit:
                raise ObjectTooLarge(f"object {oid} is {size} bytes, more than a {kind} here may be ({limit})")
        obj = self.reader.read(oid)
        if obj is None or obj[0] != kind:
            return None
        return obj[1]

    def exists(self, oid: str) -> bool:
        return self.is_oid(oid) and self.reader.exists(oid)

    def read_many(self, oids, kind: str, limit: int):
        """(oid, bytes) of each of `oids` that is here, of this kind and at most `limit` bytes (the others are
        skipped, a larger one unread), in order: one `git cat-file` for the sizes and one for the contents,
        where a read each costs a scan of 10,000 pointers or manifests ten times as much."""
        valid = [oid for oid in oids if self.is_oid(oid)]
        if not valid:
            return
        query = "".join(f"{oid}\n" for oid in valid).encode()
        sizes = self.git("cat-file", "--batch-check=%(objecttype) %(objectsize)", input=query).stdout.splitlines()
        want = kind.encode()
        wanted = [oid for oid, line in zip(valid, sizes)
                  if (parts := line.split()) and parts[0] == want and len(parts) == 2 and int(parts[1]) <= limit]
        if not wanted:
            return
        proc = subprocess.Popen(["git", "--git-dir", self.git_dir, "cat-file", "--batch", "--buffer"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1 << 16)

        def feed():   # a thread: git's replies would fill the pipe while we still wrote requests
            try:
                proc.stdin.write("".join(f"{oid}\n" for oid in wanted).encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            for oid in wanted:
                header = proc.stdout.readline().split()
                if len(header) != 3:   # gone since the sizes were read (a gc): skipped like any absent one
                    continue
                yield oid, proc.stdout.read(int(header[2]) + 1)[:-1]
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()
            feeder.join()

    def read_tree(self, oid: str) -> list[TreeEntry]:
        data = self.read_kind(oid, "tree", MAX_TREE_SIZE)
        if data is None:
            raise GitError(f"tree {oid} is missing")
        return decode_tree(data, self.algo)

    def write_object(self, kind: str, data: bytes) -> str:
        return write_loose(self.objects_dir, kind, data, self.algo, sync=self.fsync.wants("loose-object"))

    def write_blobs(self, blobs: list[bytes]) -> list[str]:
        """Write many blobs at once: a few as loose objects, more as one packfile (a loose object
        costs a temp file, a rename and a disk block each: 10 000 notes took 2.5 s loose)."""
        if len(blobs) < PACK_BLOBS_FROM:
            return [self.write_object("blob", data) for data in blobs]
        from .pack import PackWriter
        writer = PackWriter(self.objects_dir, self.algo, level=1, sync=self.fsync.wants("pack"))
        oids = [writer.add("blob", data) for data in blobs]
        writer.flush()
        return oids

    # --- refs ---------------------------------------------------------------------------------
    def ref(self, name: str, peel: bool = True) -> str | None:
        """The commit `name` points at (peel=False: whatever object it points at). Asked of a long-running
        git cat-file, which reads the ref afresh each time: a git each cost a checkout a dozen starts."""
        if self._refs is None:
            self._refs = CatFileReader(self.git_dir)
        suffix = "^{commit}" if peel else ""
        if name.startswith("refs/") and any(self._refs.resolve(rule.format(name)) for rule in _DWIM_RULES):
            # A ref git could take for this one: only this very ref counts (rare: asked of a git of its own)
            proc = self.git("show-ref", "--verify", "--hash", "--", name, check=False)
            exact = proc.stdout.decode().strip()
            found = self._refs.resolve(exact + suffix) if proc.returncode == 0 and self.is_oid(exact) else None
        else:
            found = self._refs.resolve(name + suffix)
        return found if found is None or self.is_oid(found) else None

    def update_ref(self, name: str, new: str, old: str | None, message: str = "git-panini") -> bool:
        """Compare-and-swap: move `name` to `new` only if it still points at `old` (None: absent)."""
        zero = "0" * self.hex_len
        proc = self.git("update-ref", "-m", message, name, new, old or zero, check=False)
        if proc.returncode == 0:
            crash_points.reached("update-ref")
            return True
        # Lost the race only if the ref moved; if it is still where we expected, Git failed for another
        # reason (a full disk, permissions) and retrying would only blame "concurrent writers".
        now = self.ref(name, peel=False)
        if now == old:
            raise GitError(f"could not update {name}: {proc.stderr.decode(errors='replace').strip()}")
        return False

    def close(self):
        for reader in [*self._retired, self._reader, self._refs]:
            if reader is not None:
                reader.close()
