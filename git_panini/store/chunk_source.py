"""Reads files back: resolves each chunk (raw blob or pack), checks every hash, streams the bytes."""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from ..format.hashing import BackgroundSha256
from ..format.manifest import MAX_CHUNK_SIZE, Manifest, ManifestError
from ..format.pointer import Pointer
from ..format.recipe import MAX_RECIPE_SIZE, MAX_STEP_SIZE, RecipeError, parse_recipe
from ..git.objects import object_id
from ..git.repo import ObjectTooLarge
from . import manifests as manifest_store
from .chunk_index import ChunkIndex
from .read_cost import choose_packs
from .shared import Store

READ_AHEAD_BYTES = 32 << 20   # decoded bytes of upcoming packs in flight (one more pack may pass it)
READ_AHEAD_THREADS = max(1, min(4, os.cpu_count() or 1))


class ObjectFetcher(Protocol):
    """Fetches objects by id from one remote in one request: True once fetched, False on failure."""

    remote: str

    def __call__(self, oids: list[str]) -> bool: ...


class Keeper(Protocol):
    """Keeps what a reader decoded or fetched for the files it writes (store.read_cache.CacheSession)."""

    def begin_file(self) -> None: ...

    def file_done(self) -> None: ...

    def decoded(self, chunk: str, data: bytes) -> None: ...

    def present(self, chunk: str, size: int) -> None: ...


class ReadError(Exception):
    """A file cannot be reconstructed exactly; the message names what and where."""

    offset: int | None = None   # where in the file, once known

    def __str__(self):
        text = super().__str__()
        return text if self.offset is None else f"{text} (file offset {self.offset})"


class MissingObject(ReadError):
    """The manifest or a chunk is not here (a fetch may bring it)."""


class ChunkCorrupt(ReadError):
    def __init__(self, chunk: str, where: str, data: bytes):
        super().__init__(f"chunk {chunk} from {where} is corrupt (its bytes do not hash to its id)")
        self.chunk, self.data = chunk, data


class ChunkMissing(MissingObject):
    def __init__(self, chunk: str, unreadable_packs: int = 0):
        hint = (f"{unreadable_packs} pack(s) in the store have unreadable recipes (see git panini fsck)"
                if unreadable_packs else "try: git panini fetch")
        super().__init__(f"chunk {chunk} is not in this repository ({hint})")
        self.chunk = chunk


class ChunkSource:
    """Finds chunk bytes: raw chunk blobs first, then packs via the local index (decoded packs cached).

    With a fetcher (handed in by the layer that knows remotes: transfer.remote.remote_objects), what is
    not here is fetched by object id: prefetch() asks for everything a set of files needs in one request;
    read() fetches a straggler on its own as a last resort. With a keeper (the smudge filter's read cache),
    every chunk read from a pack or fetched by id is offered to it, and iter_file says when a file verified.
    """

    def __init__(self, repo, cache_bytes: int = 256 << 20, fetcher: ObjectFetcher | None = None):
        self.repo = repo
        self.store = Store(repo)
        self.fetcher = fetcher
        self.fetches = 0          # object fetches made (round trips), for tests and benchmarks
        self.keeper: Keeper | None = None
        self._index: ChunkIndex | None = None
        self._decoded: OrderedDict[str, bytes] = OrderedDict()
        # Small files share segments packed in similarity order, not path order: a byte budget
        # (not a count of packs) keeps reading a directory from decoding each segment again.
        self._cache_bytes = cache_bytes
        self._cached = 0
        # Chunks of each cached pack not yet read: a pack is dropped once all were, so streaming a big
        # file holds one segment, not the budget (a pack is decoded again only after yielding its size).
        self._unread: dict[str, set[str]] = {}
        self._upcoming: deque[str] = deque()      # packs that plan() said come next, not yet started
        self._pending: dict[str, tuple[Future, int]] = {}   # pack -> (its decode on another thread, size)
        self._pending_bytes = 0
        self._pool: ThreadPoolExecutor | None = None
        self._last: tuple[str, bytes, bool] | None = None   # chunk, bytes, hashed: a file of zeros repeats one
        # The pack each chunk is read from, chosen for all the files read together (store/read_cost.py: what
        # fsck --amplification computes): a chunk several packs yield is read from one the others need anyway.
        self._choice: dict[str, str] = {}
        self._bad: dict[str, ReadError] = {}   # pack -> why it failed this session (see _found_bad)

    @property
    def remote(self) -> str | None:
        return self.fetcher.remote if self.fetcher else None

    @property
    def index(self) -> ChunkIndex:
        if self._index is None:
            self._index = ChunkIndex(self.store)
            self._index.refresh()
        return self._index

    def refresh(self):
        if self._index is not None:
            self._index.refresh()

    def has(self, chunk: str) -> bool:
        """The chunk is here as a raw blob, or some pack yields it and the pack's blobs are here."""
        if self.repo.exists(chunk):
            return True
        return any(all(self.repo.exists(b) for b in self.index.pack_blobs(pack))
                   for pack, _, _, _ in self.index.locate(chunk))

    def choose(self, chunks: dict[str, int]):
        """Choose the packs these chunks {chunk: size} (read together) are read from, for those not here raw."""
        todo = {c: s for c, s in chunks.items() if c not in self._choice and not self.repo.exists(c)}
        if todo:
            self._choice.update(choose_packs(self.index, todo, self._bad))

    def _locations(self, chunk: str) -> list[tuple[str, str, int, int]]:
        """Where the chunk is packed: the chosen pack first, packs found bad in this session never."""
        located = [row for row in self.index.locate(chunk) if row[0] not in self._bad]
        chosen = self._choice.get(chunk)
        return sorted(located, key=lambda row: row[0] != chosen) if chosen and len(located) > 1 else located

    def _found_bad(self, pack: str, error: ReadError):
        """The pack cannot give its chunks here (its data will not decode or fetch, or a chunk does not hash):
        no read of this session tries it again (a hostile pack would otherwise be decoded once per chunk)."""
        self._bad[pack] = error
        self._choice = {c: p for c, p in self._choice.items() if p != pack}
        self._upcoming = deque(p for p in self._upcoming if p != pack)

    def needed(self, chunks: dict[str, int]) -> set[str]:
        """Object ids to fetch so these chunks {chunk: size} can be read: a pack's data and dictionaries
        when some pack yields the chunk, else the raw chunk blob."""
        self.choose(chunks)
        wanted: set[str] = set()
        for chunk in chunks:
            if self.repo.exists(chunk):
                continue
            pack = self._choice.get(chunk)
            if pack:
                blobs = self.index.pack_blobs(pack)
                if any(b in wanted for b in blobs):
                    continue
                wanted.update(b for b in blobs if not self.repo.exists(b))
            else:
                wanted.add(chunk)
        return wanted

    def fetch(self, oids) -> bool:
        """Fetch these objects from the remote in one request; False without a fetcher or on failure."""
        oids = sorted(set(oids))
        if not oids or self.fetcher is None:
            return False
        self.fetches += 1
        if not self.fetcher(oids):
            return False
        self.index.mark_fetched(oids)
        return True

    def wanted(self, manifests, packs: bool = True) -> set[str]:
        """Object ids to fetch before these files can be read: absent manifests, and for each chunk
        not here its pack's blobs (packs=False: never), or the raw chunk. Each distinct chunk is
        looked at once, however often the files repeat it."""
        chunks: dict[str, int] = {}
        absent = set()
        for manifest in manifests:
            try:
                m = manifest_store.load(self.repo, manifest)
            except ManifestError:
                continue   # reading the file reports it
            if m is None:
                absent.add(manifest)
            else:
                chunks.update(m.distinct())
        return (self.needed(chunks) if packs else {c for c in chunks if not self.repo.exists(c)}) | absent

    def prefetch(self, manifests) -> int:
        """Fetch what these files lack in one request (a second one only for the chunks of manifests
        that were not here either). Returns how many objects were asked for."""
        manifests = list(manifests)
        wanted = self.wanted(manifests)
        if not self.fetch(wanted) and wanted:
            # One id the remote cannot serve fails the whole request (a pack whose data is gone, a
            # recipe that only claims a chunk): ask for the raw chunks instead, still in one request.
            self.fetch(self.wanted(manifests, packs=False))
        late = [m for m in manifests if m in wanted]
        if late:
            self.fetch(self.wanted(late))
        return len(wanted)

    def verify_packed(self, chunk: str, allowed=lambda pack: True) -> bool:
        """Some pack (of those `allowed`) yields this chunk, and this side decoded that pack and re-hashed
        every chunk its recipe claims (once per pack: the verdict is kept in the index). A recipe alone
        proves nothing: one that claims chunks its data does not yield never counts."""
        for pack, _, _, _ in self.index.locate(chunk):
            if allowed(pack) and (self.index.is_verified(pack) or not self.pack_errors(pack)):
                return True
        return False

    def decoded_pack(self, pack: str) -> bytes:
        """The pack's data as its codecs give it back (what a delta pack against it matches against)."""
        return self._pack_data(pack)

    def pack_errors(self, pack: str) -> list[str]:
        """Decode a pack and re-hash every chunk it claims to yield: what is wrong with it (nothing: the
        pack is recorded as verified)."""
        rows = self.index.db.execute("select chunk, offset, length from chunks where pack = ?", (pack,)).fetchall()
        try:
            data = self._pack_data(pack)
        except ReadError as e:
            return [str(e)]
        bad = []
        for chunk, offset, length in rows:
            try:
                self._checked(chunk, length, data[offset:offset + length], f"pack {pack}")
            except ReadError:
                bad.append(chunk)
        if bad:
            return [f"pack {pack}: {len(bad)} chunk(s) do not decode to their ids (first {bad[0]})"]
        # Readers and retirement weigh packs by the encoded size the recipe claims: the object proves it.
        recipe = parse_recipe(self.repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"", self.repo.hex_len)
        claimed, held = recipe.get("encoded_size"), self.repo.reader.size(recipe["data"])
        if claimed is not None and held is not None and claimed != held:
            return [f"pack {pack}: its recipe claims {claimed} bytes of encoded data; its data blob holds {held}"]
        self.index.mark_verified(pack)
        return []

    def read(self, chunk: str, size: int, hash_raw: bool = True) -> bytes:
        """The chunk's bytes, checked against its id and the manifest's size. hash_raw=False: a raw blob here
        is checked for its size only, for a caller that checks the whole file's sha256 (iter_file): git
        stored it under its id, so only a damaged disk could make it wrong, and hashing it twice cost a
        checkout a fifth of its CPU."""
        last = self._last   # (chunk, bytes, hashed): a run of one chunk (zeros) is read once
        if last is not None and last[0] == chunk and len(last[1]) == size and (last[2] or not hash_raw):
            return last[1]
        data = self._read(chunk, size, hash_raw)
        self._last = (chunk, data, hash_raw)
        return data

    def _read(self, chunk: str, size: int, hash_raw: bool = True) -> bytes:
        data = self.repo.read_kind(chunk, "blob", MAX_CHUNK_SIZE)
        if data is not None:
            if hash_raw or len(data) != size:
                data = self._checked(chunk, size, data, "raw blob")
            if self.keeper is not None:
                self.keeper.present(chunk, size)
            return data
        errors = []
        for pack, _, offset, length in self._locations(chunk):
            try:
                decoded = self._pack_data(pack)
            except ReadError as e:  # another pack, or the raw chunk on the remote, may still be good
                errors.append(e)
                self._found_bad(pack, e)   # decoded (or fetched) in vain: not again this session
                continue
            try:
                data = self._checked(chunk, size, decoded[offset:offset + length], f"pack {pack}")
            except ReadError as e:  # this chunk only: the pack's other chunks are checked one by one too
                errors.append(e)
                continue
            self._served(pack, chunk)
            if self.keeper is not None:
                self.keeper.decoded(chunk, data)
            return data
        if self.fetch([chunk]):
            data = self.repo.read_kind(chunk, "blob", MAX_CHUNK_SIZE)
            if data is not None:
                data = self._checked(chunk, size, data, "raw blob")
                if self.keeper is not None:
                    self.keeper.present(chunk, size)
                return data
        errors += [self._bad[pack] for pack, _, _, _ in self.index.locate(chunk) if pack in self._bad]
        if errors:
            raise errors[0]
        raise ChunkMissing(chunk, self.index.unreadable_packs())

    def _checked(self, chunk: str, size: int, data: bytes, where: str) -> bytes:
        if len(data) != size or object_id("blob", data, self.repo.algo) != chunk:
            raise ChunkCorrupt(chunk, where, data)
        return data

    def plan(self, chunks):
        """These (chunk, size) are read next, in this order: their packs are decoded ahead, on other cores
        (the codecs release the GIL), at most READ_AHEAD_BYTES beyond the pack being read."""
        upcoming, seen, looked = [], set(self._decoded), set()
        chunks = list(chunks)
        self.choose(dict(chunks))
        for chunk, _ in chunks:
            if chunk in looked:   # a chunk the files repeat is looked up once
                continue
            looked.add(chunk)
            if self.repo.exists(chunk):
                continue
            pack = self._choice.get(chunk)
            if pack and pack not in seen:
                seen.add(pack)
                upcoming.append(pack)
        for pack in set(self._pending) - seen:   # planned for reads that did not happen (an error)
            self._pending_bytes -= self._pending.pop(pack)[1]
        self._upcoming = deque(upcoming)
        self._read_ahead()

    def _read_ahead(self):
        from .. import codecs
        while self._upcoming and self._pending_bytes < READ_AHEAD_BYTES and len(self._pending) < READ_AHEAD_THREADS:
            pack = self._upcoming.popleft()
            if pack in self._decoded or pack in self._pending:
                continue
            try:
                loaded = self._load(pack, fetch=False)
            except ReadError:
                continue   # read in place when its turn comes, which fetches or reports what is wrong
            if self._pool is None:
                self._pool = ThreadPoolExecutor(READ_AHEAD_THREADS, thread_name_prefix="panini-decode")
            self._pending[pack] = (self._pool.submit(codecs.decode_chain, *loaded), loaded[3])
            self._pending_bytes += loaded[3]

    def _pack_data(self, pack: str, as_base: bool = False) -> bytes:
        if pack in self._decoded:
            self._decoded.move_to_end(pack)
            return self._decoded[pack]
        from .. import codecs  # only packs need the codec registry
        pending = self._pending.pop(pack, None)
        try:
            if pending is not None:
                self._pending_bytes -= pending[1]
                data = pending[0].result()
            else:
                data = codecs.decode_chain(*self._load(pack, as_base=as_base))
        except codecs.CodecError as e:
            raise ReadError(f"pack {pack} cannot be decoded: {e}") from None
        finally:
            self._read_ahead()
        self._decoded[pack] = data
        self._cached += len(data)
        self._unread[pack] = {c for (c,) in self.index.db.execute("select chunk from chunks where pack = ?", (pack,))}
        while self._cached > self._cache_bytes and len(self._decoded) > 1:
            self._drop(next(iter(self._decoded)))
        return data

    def _load(self, pack: str, fetch: bool = True, as_base: bool = False) -> tuple[bytes, list, dict, int]:
        """What decoding the pack takes (encoded data, steps, dictionaries, its base's decoded bytes, size),
        read from the store here: decode_chain(*loaded) then needs neither git nor the index, so another
        thread may run it."""
        try:
            recipe = parse_recipe(self.repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"", self.repo.hex_len)
            base = recipe.get("base")
            if base is not None and as_base:   # one level only: a chain (or a cycle) is not what a worker writes
                raise ReadError(f"pack {pack} is the base of another pack and has a base itself")
            blobs = [recipe["data"], *recipe.get("deps", [])]
            if not all(self.repo.exists(b) for b in blobs):
                if not fetch:
                    raise ReadError(f"pack {pack}: its blobs are not here")
                self.fetch(b for b in blobs if not self.repo.exists(b))
            encoded = self.repo.read_kind(recipe["data"], "blob", MAX_STEP_SIZE)
            if encoded is None:
                raise ReadError(f"pack {pack}: its data blob {recipe['data']} is missing")
            deps = {}
            for dep in recipe.get("deps", []):
                dep_data = self.repo.read_kind(dep, "blob", MAX_STEP_SIZE)
                if dep_data is None:
                    raise ReadError(f"pack {pack} needs dictionary {dep}, which is missing")
                deps[dep] = dep_data
            if base is not None:
                if not fetch and base not in self._decoded:
                    raise ReadError(f"pack {pack}: its base {base} is not decoded yet")
                deps[base] = self._pack_data(base, as_base=True)
            return encoded, recipe["steps"], deps, recipe["size"]
        except (RecipeError, KeyError, ObjectTooLarge) as e:
            raise ReadError(f"pack {pack} cannot be decoded: {e}") from None

    def _served(self, pack: str, chunk: str):
        unread = self._unread.get(pack)
        if unread is not None:
            unread.discard(chunk)
            if not unread:
                self._drop(pack)

    def _drop(self, pack: str):
        self._cached -= len(self._decoded.pop(pack))
        self._unread.pop(pack, None)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._index is not None:
            self._index.close()


def read_manifest(repo, pointer: Pointer) -> Manifest:
    """The pointer's manifest, refused (ReadError) unless its sizes add up to exactly the pointer's size,
    which may not pass panini.maxFileSize; MissingObject when it is not here."""
    if len(pointer.manifest) != repo.hex_len:
        raise ReadError(f"manifest id {pointer.manifest} does not fit this repository's {repo.algo} ids")
    cap = manifest_store.max_file_size(repo)
    if pointer.size > cap:
        raise ReadError(f"the file is {pointer.size} bytes, more than {manifest_store.MAX_FILE_SIZE_KEY} allows "
                        f"({cap}): raise it to read this file")
    try:
        chunks = manifest_store.load(repo, pointer.manifest, pointer.size)
    except ManifestError as e:
        raise ReadError(f"manifest {pointer.manifest}: {e}") from None
    if chunks is None:
        raise MissingObject(f"manifest {pointer.manifest} is not in this repository (try: git panini fetch)")
    if chunks.size != pointer.size:
        raise ReadError(f"manifest {pointer.manifest} does not add up to the pointer's size {pointer.size}")
    return chunks


def iter_file(source: ChunkSource, pointer: Pointer):
    """Yield a file's bytes chunk by chunk; raise ReadError before yielding anything unverifiable,
    and after the last chunk if the whole-file sha256 does not match."""
    chunks = read_manifest(source.repo, pointer)
    if source.keeper is not None:
        source.keeper.begin_file()
    if len(chunks.chunks) > 1:   # one chunk: nothing to read ahead (a checkout of many small files skips the lookups)
        source.plan(chunks.distinct())
    digest = BackgroundSha256()
    offset = 0
    for chunk, size in chunks:
        try:
            data = source.read(chunk, size, hash_raw=False)
        except ReadError as e:
            e.offset = offset
            raise
        digest.update(data)
        offset += size
        yield data
    if digest.hexdigest() != pointer.sha256:
        _raw_corrupt(source, chunks)
        raise ReadError(f"reassembled file does not match sha256 {pointer.sha256}")
    if source.keeper is not None:
        source.keeper.file_done()


def _raw_corrupt(source: ChunkSource, chunks: Manifest):
    """Raw blobs are read unhashed (the file's sha256 checks them at once): when it does not match, the first
    raw blob whose bytes do not hash to its id is named, with where it sits (ChunkCorrupt)."""
    offset, seen = 0, set()
    for chunk, size, repeats in chunks.runs():
        if chunk not in seen:
            seen.add(chunk)
            data = source.repo.read_kind(chunk, "blob", MAX_CHUNK_SIZE)
            if data is not None and object_id("blob", data, source.repo.algo) != chunk:
                error = ChunkCorrupt(chunk, "raw blob", data)
                error.offset = offset
                raise error
        offset += size * repeats


def missing_chunks(source: ChunkSource, pointer: Pointer) -> list[str]:
    """Chunk ids (or the manifest id) this repository lacks to rebuild the file."""
    try:
        chunks = read_manifest(source.repo, pointer)
    except ReadError:
        return [pointer.manifest]
    return [c for c in chunks.chunks if not source.has(c)]
