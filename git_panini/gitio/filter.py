"""`git panini filter-process`: Git's long-running clean/smudge filter (protocol version 2, with delay)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from ..format import pointer as pointer_mod
from ..format.lfs_pointer import lfs_pointer
from ..git.pktline import PktReader, PktWriter, ProtocolError
from ..git.repo import Repo
from ..store import journal
from ..util import errors
from ..util.pathfilter import PathFilter
from ..util.units import progress_columns, shown
from . import unavailable
from .markers import NEEDS_FETCH, REFETCH_ENV
from .writer import IngestSession

if TYPE_CHECKING:
    from ..store.chunk_source import ChunkSource

CAPABILITIES = ("clean", "smudge", "delay")
PROGRESS_ENV = "GIT_PANINI_PROGRESS_BYTES"
SKIP_SMUDGE_ENV = "GIT_PANINI_SKIP_SMUDGE"   # "1": check out pointers as they are (git-lfs's GIT_LFS_SKIP_SMUDGE)
SPOOL_MEMORY = 8 << 20       # a blob passed through, or a file verified before it is answered, stays in memory up
SPOOL_BLOCK = 1 << 20        # to this size (then a temporary file in .git/panini)


def warn(message: str, exc: BaseException | None = None):
    """One line for the user; the message (and traceback, if any) also in .git/panini/logs/."""
    errors.warn(message, exc, record=True)


class FilterServer:
    def __init__(self, repo: Repo, stdin, stdout):
        self.repo = repo
        self.inp = PktReader(stdin)
        self.out = PktWriter(stdout)
        self._ingest: IngestSession | None = None
        self._source: ChunkSource | None = None
        self._delayed: dict[str, pointer_mod.Pointer] = {}   # pathname -> pointer awaiting a fetch
        self._fetched = False
        self._replayed = False
        self._skip_all = os.environ.get(SKIP_SMUDGE_ENV, "") not in ("", "0")
        self._paths = PathFilter.from_config(repo)
        self._required: bool | None = None   # filter.panini.required, read when a file is first written
        self.on_bytes = lambda n: None

    @property
    def ingest(self) -> IngestSession:
        if self._ingest is None:
            self._ingest = IngestSession(self.repo)
        return self._ingest

    @property
    def source(self) -> ChunkSource:
        if self._source is None:
            # The reading side loads with the first smudge: a git add (most filter sessions) never needs it.
            from ..store.chunk_source import ChunkSource
            from ..store.read_cache import CacheSession
            self._source = ChunkSource(self.repo)
            # What a checkout decodes or fetches is kept (refs/panini/cache): the next one of these files reads it.
            self._source.keeper = CacheSession(self.repo, warn)
        return self._source

    def serve(self):
        self._handshake()
        if not self.repo.bare:
            from .hook_files import ensure_installed  # the first run in a clone installs its hooks
            ensure_installed(self.repo, warn)
        progress = _progress_bar()
        if progress is not None:
            progress.start()
            task = progress.add_task("chunking", total=int(os.environ[PROGRESS_ENV]))
            self.on_bytes = lambda n: progress.advance(task, n)
        try:
            self._serve()
        finally:
            if progress is not None:
                progress.stop()

    def _serve(self):
        try:
            while True:
                try:
                    headers = self.inp.read_text_list()
                except EOFError:
                    return
                meta = dict(h.split("=", 1) for h in headers if "=" in h)
                command = meta.get("command")
                if command == "clean":
                    self._clean(meta["pathname"])
                elif command == "smudge":
                    self._smudge(meta["pathname"], meta.get("can-delay") == "1")
                elif command == "list_available_blobs":
                    self._list_available()
                else:
                    raise ProtocolError(f"unknown filter command {command!r}")
        finally:
            self.close()

    def close(self):
        # The journal: one store commit for everything this git command cleaned.
        if self._ingest is not None:
            try:
                self._ingest.finish()
            except OSError as e:   # a full disk: the journal and WAL stay, for the next commit's replay
                warn(f"could not record the files this command cleaned ({e.strerror or e}); their data stays "
                     "in .git/panini and the next commit records it once there is space", e)
            self._ingest = None
        if self._source is not None:
            self._source.keeper.finish()   # the read cache: one pack and one commit for the session
            self._source.close()

    def _handshake(self):
        hello = self.inp.read_text_list()
        if not hello or hello[0] != "git-filter-client" or "version=2" not in hello[1:]:
            raise ProtocolError("expected git-filter-client with version=2")
        self.out.text_list(["git-filter-server", "version=2"])
        offered = {h.split("=", 1)[1] for h in self.inp.read_text_list() if h.startswith("capability=")}
        self.out.text_list([f"capability={c}" for c in CAPABILITIES if c in offered])

    # --- clean ------------------------------------------------------------------------------------
    def _clean(self, path: str):
        content = self.inp.read_content()
        first = next(content, b"")
        head = bytearray(first)
        # A pointer that is already clean passes through unchanged (e.g. a file git-panini wrote
        # as a pointer because its data was missing): never chunk a pointer into another pointer.
        while len(head) < pointer_mod.MAX_POINTER_SIZE and (pkt := next(content, None)) is not None:
            head += pkt
        if pointer_mod.looks_like_pointer(bytes(head)) and _is_valid_pointer(bytes(head)) \
                or pointer_mod.read_by_git(path):
            self._respond(bytes(head) + b"".join(content))
            return
        if lfs_pointer(bytes(head)) is not None:
            # git-lfs's pointer, not the file's data (git-lfs never downloaded it, or is not installed): stored
            # as our data, a commit would hold the pointer text for the file. Left as git-lfs's pointer.
            warn(f"{path} holds git-lfs's pointer, not its data: left as it is (git lfs pull brings the data; "
                 "git panini migrate import converts git-lfs's files)")
            self._respond(bytes(head))
            return
        try:
            result = self.ingest.clean(_chain(bytes(head), content, self.on_bytes), path)
        except Exception as e:  # never leave git hanging: drain, then report the error
            for _ in content:
                pass
            warn(f"clean {path}: {e}", e)
            self.out.text_list(["status=error"])
            return
        self._respond(result)

    # --- smudge -----------------------------------------------------------------------------------
    def _smudge(self, path: str, can_delay: bool):
        from ..store.chunk_source import missing_chunks
        content = self.inp.read_content()
        data = bytearray()
        while len(data) <= pointer_mod.MAX_POINTER_SIZE and (pkt := next(content, None)) is not None:
            data += pkt
        if len(data) > pointer_mod.MAX_POINTER_SIZE:
            self._pass_through(path, data, content)   # too big for a pointer: the file as it was committed
            return
        data = bytes(data)
        if not data and path in self._delayed:
            pointer = self._delayed.pop(path)
        elif not data:
            self._respond(b"")
            return
        else:
            try:
                pointer = pointer_mod.parse(data)
            except pointer_mod.PointerError as e:
                if pointer_mod.looks_like_pointer(data):
                    warn(f"{path}: invalid pointer ({e}); writing it out unchanged")
                self._respond(data)
                return
            if self._skip_all or not self._paths.matches(path):
                self._respond(data)   # asked for pointers only (skip-smudge, fetchinclude / fetchexclude)
                return
            missing = missing_chunks(self.source, pointer)
            if missing and self._ingest is not None and self._ingest.make_readable():
                missing = missing_chunks(self.source, pointer)   # cleaned by this git command: was in its WAL
            if missing and self._replay_dead_sessions():
                missing = missing_chunks(self.source, pointer)   # cleaned by a git add killed since
            if missing:
                if can_delay and not self._fetched:
                    self._delayed[path] = pointer
                    self.out.text_list(["status=delayed"])
                    return
                self._fetch([pointer])
        self._write_file(path, pointer)

    def _replay_dead_sessions(self) -> bool:
        """A `git add` killed after Git wrote its index left staged pointers whose data is in its WAL: record
        it (what the next commit's hook would do), once per process. True when something was recorded."""
        if self._replayed:
            return False
        self._replayed = True
        if not journal.abandoned(self.repo):
            return False
        recorded, _ = journal.replay(self.repo)
        self.source.refresh()
        return bool(recorded)

    def _pass_through(self, path: str, head: bytearray, rest):
        """Hand a non-pointer blob back unchanged, in bounded memory. Git sends all of it before it reads
        the answer, so it waits in a spool (a file in .git/panini past SPOOL_MEMORY) instead of a buffer."""
        with tempfile.SpooledTemporaryFile(SPOOL_MEMORY, dir=self.repo.panini_dir) as spool:
            try:
                os.makedirs(self.repo.panini_dir, exist_ok=True)
                spool.write(head)
                del head[:]
                for pkt in rest:
                    spool.write(pkt)
                spool.seek(0)
            except OSError as e:   # e.g. a full disk: read what git still sends, then refuse this file
                for _ in rest:
                    pass
                warn(f"smudge {path}: cannot hold the file while git sends it: {e.strerror or e}")
                self.out.text_list(["status=error"])
                return
            self._answer(spool)

    # A file whose data cannot be had (missing here and on the remote, a manifest refused as too large or not
    # adding up, a chunk or pack that does not hash to its id, a file that does not match its sha256) must
    # never abort the checkout of every other file. Git's protocol has no "skip this one": status=error for a
    # path makes git keep the blob as it is (here the pointer text) only when filter.panini.required is false;
    # when it is true (git panini install sets it, as git-lfs does) git dies and the whole checkout or clone
    # fails, and so does an error sent after part of the content. So the filter answers status=success with
    # the pointer text itself, the same bytes git would have written for a filter that is not required; says
    # why in one line; and records the path (gitio.unavailable) for status, fsck, `git panini checkout` and,
    # when a fetch may bring the data, the post-checkout hook. Under required=true, a file is decoded and
    # verified whole (into a spool: memory up to SPOOL_MEMORY, then a file in .git/panini) before the first
    # byte is answered, since no failure may come after status=success; otherwise it streams, and a failure
    # part-way sends status=error, which makes git keep the pointer text itself.
    def _write_file(self, path: str, pointer):
        from ..store.chunk_source import ReadError, iter_file
        try:
            chunks = iter_file(self.source, pointer)
            first = next(chunks, b"")
        except ReadError as e:
            self._unavailable(path, pointer, e)
            return
        if self._required is None:
            self._required = _required(self.repo)
        if self._required:
            self._write_verified(path, pointer, first, chunks)
            return
        self.out.text_list(["status=success"])
        try:
            self.out.content(first)
            for data in chunks:
                self.out.content(data)
        except ReadError as e:
            # Git discards content followed by an error status: nothing unverified lands on disk.
            self._unavailable(path, pointer, e, answered=True)
            return
        self.out.flush()
        self.out.flush()  # empty list: keep status=success

    def _write_verified(self, path: str, pointer, first: bytes, chunks):
        """The whole file decoded and checked (each chunk, then its sha256) before it is answered."""
        from ..store.chunk_source import ReadError
        try:
            os.makedirs(self.repo.panini_dir, exist_ok=True)
            spool = tempfile.SpooledTemporaryFile(SPOOL_MEMORY, dir=self.repo.panini_dir)
        except OSError as e:
            self._unavailable(path, pointer, f"cannot hold the file to verify it: {e.strerror or e}")
            return
        with spool:
            try:
                spool.write(first)
                for data in chunks:
                    spool.write(data)
                spool.seek(0)
            except ReadError as e:
                self._unavailable(path, pointer, e)
                return
            except OSError as e:   # a full disk
                self._unavailable(path, pointer, f"cannot hold the file to verify it: {e.strerror or e}")
                return
            self._answer(spool)

    def _answer(self, spool):
        """status=success and the spooled bytes, from its start."""
        self.out.text_list(["status=success"])
        while block := spool.read(SPOOL_BLOCK):
            self.out.content(block)
        self.out.flush()
        self.out.flush()   # empty list: keep status=success

    def _unavailable(self, path: str, pointer, error, answered: bool = False):
        """Leave this file as its pointer text (see above): one line naming it and why, and a record."""
        from ..store.chunk_source import MissingObject
        reason = str(error)
        warn(f"{shown(path)}: left as its pointer: {reason} (git panini checkout tries again)")
        try:
            unavailable.record(self.repo, path, pointer.encode(), reason)
            if isinstance(error, MissingObject) and not os.environ.get(REFETCH_ENV):
                self._note_missing(path)
        except OSError as e:
            warn(f"could not record {path} as missing: {e.strerror or e}")
        if answered:
            self.out.flush()
            self.out.text_list(["status=error"])
        else:
            self._respond(pointer.encode())

    def _note_missing(self, path: str):
        """Leave the marker the post-checkout hook looks for: these paths need a fetch and a re-checkout."""
        os.makedirs(self.repo.panini_dir, exist_ok=True)
        with open(os.path.join(self.repo.panini_dir, NEEDS_FETCH), "a", encoding="utf-8") as f:
            f.write(path + "\n")

    def _list_available(self):
        if self._delayed:
            self._fetch(list(self._delayed.values()))
        paths = list(self._delayed)
        self.out.text_list([f"pathname={p}" for p in paths])
        self.out.text_list(["status=success"])

    def _fetch(self, pointers: list):
        """What these files lack, from the remote: its store once per process (metadata: manifests and
        recipes), then every blob they need in one request by id."""
        from ..transfer.remote import default_remote, remote_objects
        from ..transfer.sync import SyncError, fetch
        if not self._fetched:
            self._fetched = True
            self.source.fetcher = remote_objects(self.repo, default_remote(self.repo))
            if self.source.remote is None:
                warn("file data is missing and no remote is configured to fetch it from")
                return
            try:
                fetch(self.repo, self.source.remote)
            except SyncError as e:
                warn(str(e))
            self.source.refresh()
        clock = time.monotonic()
        asked = self.source.prefetch([p.manifest for p in pointers])
        if asked:
            _phase(f"fetched the data of {len(pointers)} file(s) ({asked} object(s)) from "
                   f"{self.source.remote} in {time.monotonic() - clock:.1f} s")

    def _respond(self, data: bytes):
        self.out.text_list(["status=success"])
        self.out.content(data)
        self.out.flush()
        self.out.flush()


def _required(repo) -> bool:
    """filter.panini.required, as git reads it (true, yes, on, 1)."""
    return repo.config_bool("filter.panini.required")


def _is_valid_pointer(data: bytes) -> bool:
    try:
        pointer_mod.parse(data)
        return True
    except pointer_mod.PointerError:
        return False


def _chain(first: bytes, rest, on_bytes):
    if first:
        on_bytes(len(first))
        yield first
    for block in rest:
        on_bytes(len(block))
        yield block


def _progress_bar():
    """`git panini add` asks for a progress bar (on stderr) by saying how many bytes to expect."""
    if not os.environ.get(PROGRESS_ENV, "").isdigit() or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress
    return Progress("chunking", *progress_columns(),
                    console=Console(stderr=True), transient=True)


def _phase(message: str):
    """One line for a phase of a checkout (a fetch), on a terminal only: it clears whatever git's own
    progress line ("Filtering content: 40% (2/5)") shows now and ends with a newline, so neither overwrites
    the other (a bar of ours beside git's drew both on one line); git draws its line again on its next update."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[Kgit-panini: {shown(message)}\n")
        sys.stderr.flush()


def _widen_pipes(size: int = 1 << 20):
    """Git talks to us through 64 KiB pipes by default; a wider pipe lets either side run ahead by
    many packets instead of waking the other for each one (F_SETPIPE_SZ; Linux only, best effort)."""
    try:
        import fcntl
        set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031)
    except ImportError:
        return
    for fd in (0, 1):
        try:
            fcntl.fcntl(fd, set_size, size)
        except OSError:
            pass   # not a pipe, or above /proc/sys/fs/pipe-max-size


def main():
    _widen_pipes()
    repo = Repo(".")
    FilterServer(repo, sys.stdin.buffer, sys.stdout.buffer).serve()
