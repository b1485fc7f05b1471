"""The read cache: refs/panini/cache, chunks that checkouts decoded or fetched, kept so the next checkout of
the same files decodes and fetches nothing (as git-lfs keeps .git/lfs/objects).

Tree (a parentless snapshot, like refs/panini/local: what it drops is garbage for `git gc` at once):

    chunks/<2 hex>/<oid>     raw chunk blobs of files a checkout wrote: decoded from a pack, or read as a raw
                             blob that refs/panini/local does not keep (fetched by id, or packed by a worker
                             since): no ref reaches those, and gc would drop them
    buckets/<seq>-<bytes>    one blob per bucket: the ids of the chunks it added, one a line; <seq> (10 digits)
                             orders the buckets oldest first, <bytes> is what their chunks hold

It holds at most panini.cacheSize bytes (git's k/m/g suffixes; 0 turns it off). Chunks enter in buckets of at
most a sixteenth of that; once the cache holds more, the oldest buckets go whole: least recently written
first. A chunk already cached is not written again, nor renewed by being read.

It is a copy of data the store already holds (raw on a remote, or in a pack): never pushed (a push names
its refs one by one), never proof that a remote holds anything, never counted by fsck for a local file,
and `git panini prune` drops it whole. refs/panini/local keeps its chunks by itself, whatever happens here.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from ..git.cas_refs import SnapshotRef
from ..git.pack import PackStream
from ..git.tree_edit import TreeEditor
from ..util import crash_points
from . import journal
from .local import LocalStore
from .shared import fan

CACHE_REF = "refs/panini/cache"
CACHE_SIZE_KEY = "panini.cacheSize"
# A few checkouts' worth of the files people switch between (a branch and back, a re-clone of recent work),
# at raw size on disk (stored, not compressed: writing it must not slow a checkout), small next to a work tree
# of large files. Everything in it is also in the store, so a larger cache saves only decode and fetch time.
DEFAULT_CACHE_SIZE = 1 << 30
BUCKETS = 16
_BUCKET = re.compile(r"(\d{10})-(\d+)")
MAX_BUCKET_LIST = 64 << 20


def cache_size(repo) -> tuple[int, str | None]:
    """panini.cacheSize in bytes (a value <= 0: off), and a warning when it is not a size git can read."""
    try:
        size = repo.config_int(CACHE_SIZE_KEY)
        return (DEFAULT_CACHE_SIZE, None) if size is None else (max(size, 0), None)
    except ValueError:
        return DEFAULT_CACHE_SIZE, f"{CACHE_SIZE_KEY} is not a size (e.g. 512m, 2g); using {DEFAULT_CACHE_SIZE >> 20}m"


def bucket_limit(bound: int) -> int:
    return max(bound // BUCKETS, 1)


@dataclass
class Bucket:
    seq: int
    size: int
    oid: str | None = None   # its list blob, as the tree has it

    @property
    def name(self) -> str:
        return f"buckets/{self.seq:010d}-{self.size}"


class ReadCache(SnapshotRef):
    ref = CACHE_REF

    def add(self, entries: list[tuple[str, int]], bound: int) -> str | None:
        """Cache these (chunk, size), whose blobs are here, then drop the oldest buckets while the cache holds
        more than `bound` bytes. A chunk already cached (another checkout's) is not added twice."""
        limit = bucket_limit(bound)

        def apply(editor: TreeEditor):
            buckets = _buckets(editor)
            fresh: dict[str, int] = {}
            for chunk, size in entries:
                if chunk not in fresh and editor.get("chunks/" + fan(chunk)) is None:
                    fresh[chunk] = size
            if not fresh:
                return
            if buckets and buckets[-1].size < limit:   # the newest bucket has room: fill it first
                current = buckets.pop()
                ids = self._ids(current)
                editor.remove(current.name)
            else:
                current, ids = Bucket(buckets[-1].seq + 1 if buckets else 0, 0), []
            for chunk, size in fresh.items():
                if current.size >= limit:
                    buckets.append(self._write(editor, current, ids))
                    current, ids = Bucket(current.seq + 1, 0), []
                editor.set("chunks/" + fan(chunk), chunk)
                ids.append(chunk)
                current.size += size
            buckets.append(self._write(editor, current, ids))
            total = sum(b.size for b in buckets)
            while total > bound and buckets:
                oldest = buckets.pop(0)
                for chunk in self._ids(oldest):
                    editor.remove("chunks/" + fan(chunk))
                editor.remove(oldest.name)
                total -= oldest.size
        return self.edit(apply, f"panini: cache {len(entries)} chunk(s)")

    def usage(self) -> tuple[int, int]:
        """(chunks, bytes) the cache holds."""
        tree = self.tree_of(self.tip())
        buckets = _buckets(TreeEditor(self.repo, tree)) if tree else []
        return sum(len(self._ids(b)) for b in buckets), sum(b.size for b in buckets)

    def clear(self) -> tuple[int, int]:
        """Drop the whole cache (its ref, by compare-and-swap); return (chunks, bytes) it held."""
        for _ in range(50):
            tip = self.tip()
            if tip is None:
                return 0, 0
            held = self.usage()
            if self.repo.git("update-ref", "-d", self.ref, tip, check=False).returncode == 0:
                return held
        raise RuntimeError(f"could not delete {self.ref}: too many concurrent writers")

    def _ids(self, bucket: Bucket) -> list[str]:
        data = self.repo.read_kind(bucket.oid, "blob", MAX_BUCKET_LIST) if bucket.oid else None
        return [i for i in (data or b"").decode("ascii", "replace").split() if self.repo.is_oid(i)]

    def _write(self, editor: TreeEditor, bucket: Bucket, ids: list[str]) -> Bucket:
        bucket.oid = self.repo.write_object("blob", "".join(i + "\n" for i in ids).encode())
        editor.set(bucket.name, bucket.oid)
        return bucket


def _buckets(editor: TreeEditor) -> list[Bucket]:
    """The cache's buckets, oldest first (an entry of another shape: none of ours, ignored)."""
    out = []
    for entry in editor.list("buckets"):
        match = _BUCKET.fullmatch(entry.name)
        if match and not entry.is_tree:
            out.append(Bucket(int(match[1]), int(match[2]), entry.oid))
    return sorted(out, key=lambda b: b.seq)


class CacheSession:
    """What one filter session read from packs or fetched for the files it wrote whole (ChunkSource.keeper).

    Decoded chunks go into one pack as they come (written at once: constant memory); finish() makes it visible
    with a .keep file, which keeps `git gc` off it until the ref names it, and records the chunks of verified
    files in refs/panini/cache in one commit. A session takes in at most the cache's size less a bucket, so the
    cache never holds more than its size. Any failure is one warning, and the checkout goes on uncached."""

    def __init__(self, repo, warn):
        self.repo = repo
        self.warn = warn                  # warn(one line, exception or None)
        self._bound: int | None = None    # panini.cacheSize, read when something is first offered
        self._intake = 0
        self._taken: dict[str, int] = {}  # chunk -> size, of the files written whole so far
        self._file: dict[str, int] = {}   # the current file's, until it verifies
        self._bytes = 0                   # everything taken in, a failed file's too (its bytes are written)
        self._writer: PackStream | None = None
        self._kept: list[TreeEditor] | None = None   # the trees of refs/panini/local and the cache
        self._failed = False

    def begin_file(self):
        self._file = {}

    def file_done(self):
        """The file just read verified whole (its sha256): its chunks may be cached."""
        self._taken.update(self._file)
        self._file = {}

    def decoded(self, chunk: str, data: bytes):
        """A chunk decoded from a pack (checked against its id): its bytes are written now."""
        try:
            if not self._room(chunk, len(data)):
                return
            if self._writer is None:
                self._writer = PackStream(self.repo.objects_dir, self.repo.algo, keep=True,
                                          sync=self.repo.fsync.wants("pack"))
            self._writer.add("blob", data, chunk)
        except Exception as e:   # noqa: BLE001 - a full disk, or anything: this checkout goes on uncached
            self._fail(e)
            return
        self._file[chunk] = len(data)

    def present(self, chunk: str, size: int):
        """A raw chunk blob read here: its id is recorded unless a ref of ours keeps it already."""
        try:
            if not self._held(chunk) and self._room(chunk, size):
                self._file[chunk] = size
        except Exception as e:   # noqa: BLE001 - a ref of ours unreadable, or anything: this checkout goes on
            self._fail(e)

    def _held(self, chunk: str) -> bool:
        """refs/panini/local or the cache itself keeps the chunk (as the session first read them)."""
        if self._kept is None:
            self._kept = [TreeEditor(self.repo, ref.tree_of(ref.tip())) for ref in (LocalStore(self.repo),
                                                                                   ReadCache(self.repo))]
        return any(tree.get("chunks/" + fan(chunk)) is not None for tree in self._kept)

    def _room(self, chunk: str, size: int) -> bool:
        if self._failed or chunk in self._taken or chunk in self._file:
            return False
        if self._bound is None:
            self._bound, problem = cache_size(self.repo)
            self._intake = self._bound - bucket_limit(self._bound) if self._bound else 0
            if problem:
                self.warn(problem)
        if self._bytes + size > self._intake:
            return False
        self._bytes += size
        return True

    def finish(self):
        """Record what the session took in (its pack made visible first), in one commit; never raises."""
        if self._failed or not self._taken:
            self._discard()
        else:
            self._record()
        try:   # a killed checkout's pack (its chunks read here since, or garbage): gc may have it now
            journal.release_abandoned_keeps(self.repo)
        except OSError:
            pass   # the next session or commit hook releases it

    def _record(self):
        writer = self._writer
        try:
            if writer is not None:
                writer.finish()
            crash_points.reached("cache-packed")
            # A raw blob read is here unless a gc took it since; one this session wrote is in its pack.
            entries = [(c, s) for c, s in self._taken.items() if (writer is not None and c in writer)
                       or self.repo.exists(c)]
            ReadCache(self.repo).add(entries, self._bound)
        except Exception as e:   # noqa: BLE001 - whatever it is, the files are written: one warning
            self._fail(e)
            return
        self._writer, self._taken = None, {}
        if writer is not None:
            with contextlib.suppress(OSError):   # a .keep left over: the next session releases it
                writer.release_keep()

    def _fail(self, error: Exception):
        self._failed = True
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        self.warn(f"could not keep what this checkout decoded in the read cache ({reason}); the next checkout "
                  "decodes it again", error)
        self._discard()

    def _discard(self):
        if self._writer is not None:
            self._writer.discard()   # nothing names its packs
            self._writer = None
