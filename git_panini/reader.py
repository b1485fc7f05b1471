"""Reads files back: resolves each chunk (raw blob or pack), checks every hash, streams the bytes."""

from __future__ import annotations

from collections import OrderedDict

from . import manifest as manifest_mod
from .hashing import BackgroundSha256
from .index import ChunkIndex
from .objects import object_id
from .pointer import Pointer
from .recipe import RecipeError, parse_recipe
from .store import Store


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
    """Finds chunk bytes: raw chunk blobs first, then packs via the local index (decoded packs cached)."""

    def __init__(self, repo, cache_bytes: int = 256 << 20):
        self.repo = repo
        self.store = Store(repo)
        self._index: ChunkIndex | None = None
        self._decoded: OrderedDict[str, bytes] = OrderedDict()
        # Small files share segments packed in similarity order, not path order: a byte budget
        # (not a count of packs) keeps reading a directory from decoding each segment again.
        self._cache_bytes = cache_bytes
        self._cached = 0

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
        return self.repo.exists(chunk) or bool(self.index.locate(chunk))

    def read(self, chunk: str, size: int) -> bytes:
        """The chunk's bytes, checked against its id and the manifest's size."""
        data = self.repo.read_kind(chunk, "blob")
        if data is not None:
            return self._checked(chunk, size, data, "raw blob")
        errors = []
        for pack, pack_tree, offset, length in self.index.locate(chunk):
            try:
                data = self._pack_data(pack, pack_tree)[offset:offset + length]
                return self._checked(chunk, size, data, f"pack {pack}")
            except ReadError as e:  # another pack may still hold a good copy
                errors.append(e)
        if errors:
            raise errors[0]
        raise ChunkMissing(chunk, self.index.unreadable_packs())

    def _checked(self, chunk: str, size: int, data: bytes, where: str) -> bytes:
        if len(data) != size or object_id("blob", data, self.repo.algo) != chunk:
            raise ChunkCorrupt(chunk, where, data)
        return data

    def _pack_data(self, pack: str, pack_tree: str) -> bytes:
        if pack in self._decoded:
            self._decoded.move_to_end(pack)
            return self._decoded[pack]
        from . import codecs  # only packs need the codec registry
        entries = {e.name: e for e in self.repo.read_tree(pack_tree)}
        blobs = {name: self.repo.read_kind(e.oid, "blob") for name, e in entries.items()}
        if blobs.get("recipe") is None or blobs.get("data") is None:
            raise ReadError(f"pack {pack} lacks its data or recipe")
        try:
            recipe = parse_recipe(blobs["recipe"], self.repo.hex_len)
            deps = {}
            for dep in recipe.get("deps", []):
                dep_data = self.repo.read_kind(str(dep), "blob")
                if dep_data is None:
                    raise ReadError(f"pack {pack} needs dictionary {dep}, which is missing")
                deps[dep] = dep_data
            data = codecs.decode_chain(blobs["data"], recipe["steps"], deps, recipe["size"])
        except (RecipeError, codecs.CodecError, KeyError) as e:
            raise ReadError(f"pack {pack} cannot be decoded: {e}") from None
        self._decoded[pack] = data
        self._cached += len(data)
        while self._cached > self._cache_bytes and len(self._decoded) > 1:
            self._cached -= len(self._decoded.popitem(last=False)[1])
        return data

    def close(self):
        if self._index is not None:
            self._index.close()


def read_manifest(repo, pointer: Pointer) -> list[tuple[str, int]]:
    if len(pointer.manifest) != repo.hex_len:
        raise ReadError(f"manifest id {pointer.manifest} does not fit this repository's {repo.algo} ids")
    data = repo.read_kind(pointer.manifest, "blob")
    if data is None:
        raise MissingObject(f"manifest {pointer.manifest} is not in this repository (try: git panini fetch)")
    try:
        chunks = manifest_mod.parse(data, repo.hex_len)
    except manifest_mod.ManifestError as e:
        raise ReadError(f"manifest {pointer.manifest}: {e}") from None
    if sum(size for _, size in chunks) != pointer.size:
        raise ReadError(f"manifest {pointer.manifest} does not add up to the pointer's size {pointer.size}")
    return chunks


def iter_file(source: ChunkSource, pointer: Pointer):
    """Yield a file's bytes chunk by chunk; raise ReadError before yielding anything unverifiable,
    and after the last chunk if the whole-file sha256 does not match."""
    chunks = read_manifest(source.repo, pointer)
    digest = BackgroundSha256()
    offset = 0
    for chunk, size in chunks:
        try:
            data = source.read(chunk, size)
        except ReadError as e:
            e.offset = offset
            raise
        digest.update(data)
        offset += size
        yield data
    if digest.hexdigest() != pointer.sha256:
        raise ReadError(f"reassembled file does not match sha256 {pointer.sha256}")


def missing_chunks(source: ChunkSource, pointer: Pointer) -> list[str]:
    """Chunk ids (or the manifest id) this repository lacks to rebuild the file."""
    try:
        chunks = read_manifest(source.repo, pointer)
    except ReadError:
        return [pointer.manifest]
    return [c for c, _ in chunks if not source.has(c)]
