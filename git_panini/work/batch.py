"""Packing one batch of claimed files: read (and so verify) their chunks, plan segments, encode and
commit the packs (PackBuilder), and account each file's result."""

from __future__ import annotations

import functools
import time

from ..format.manifest import Manifest, ManifestError, TooLarge
from ..format.recipe import MAX_RECIPE_SIZE, RecipeError, parse_recipe
from ..format.segment import (
    WHOLE_FILE_FORMATS,
    Segment,
    SmallFile,
    group_small_files,
    plan_segments,
    sniff_format,
    whole_file_chunks,
)
from ..git.repo import ObjectTooLarge
from ..store import history
from ..store import manifests as manifest_store
from ..store.chunk_index import ChunkIndex
from ..store.chunk_source import ChunkSource, ReadError
from ..store.read_cost import pack_use
from ..store.read_cost import waste as read_waste
from ..store.shared import Store
from ..util import crash_points
from ..util.units import human
from . import deltas
from .lifetime_groups import REPACK_AT, group_by_lifetime
from .pack_builder import PackBuilder
from .repack import chunks_to_repack
from .planner import mostly_printable
from .result import WorkResult, note_error

# balanced: hot data with codecs that decode at hundreds of MB/s, cold data with the strongest; archive: the
# strongest everywhere (every checkout then waits on them).
PROFILE_KEY = "panini.profile"
PROFILES = ("balanced", "archive")
SMALL_FILE = 1 << 20       # files up to this size are grouped with others
SAMPLE_BYTES = 64 << 10
TINY_DUPLICATE = 4096      # at most this many already-packed bytes are packed again to keep a file whole


class BatchPacker:
    """Packs batches of files into packs committed to the store under worker `worker_id`."""

    def __init__(self, repo, store: Store, worker_id: str, effort: int = 2, threads: int = 1, device: str = "cpu",
                 log=None):
        self.repo = repo
        self.store = store
        self.id = worker_id
        self.effort = effort
        self.threads = threads   # segments and codec candidates encoded at once
        self.device = device
        self.log = log or (lambda message: None)
        self._lives: tuple[history.Lifetimes, dict, dict[int, int]] | None = None
        self.repacked: frozenset[str] = frozenset()   # what the last batch packed again
        profile = repo.config_get(PROFILE_KEY) or PROFILES[0]
        if profile not in PROFILES:
            raise RuntimeError(f"{PROFILE_KEY} is {profile!r}: it must be one of {', '.join(PROFILES)}")
        self.archive = profile == "archive"

    def _lifetimes(self, index: ChunkIndex) -> tuple[history.Lifetimes, dict[int, dict[str, int]], dict[int, int]]:
        """Which hot commits need each chunk and what each writes; the packs each reads, how much of each it
        needs, and what its checkout decodes for nothing: scanned once per worker run, then kept up to date."""
        if self._lives is None:
            files = self._files = history.Files(self.repo)
            hot = self._hot = history.hot_commits(self.repo)
            self._parents = history.first_parents(self.repo, hot)
            self._before: dict[str | None, dict] = {}
            uses = {i: pack_use(index, [m for _, m in files.of(commit)[0]]) for i, commit in enumerate(hot)}
            waste = {i: read_waste(index, use) for i, use in uses.items()}
            self._lives = history.lifetimes(self.repo, hot, files), uses, waste
        return self._lives

    def _previous(self, i: int) -> dict:
        """{path: manifest} of the first parent of hot commit i ({} for a root)."""
        parent = self._parents.get(self._hot[i])
        if parent not in self._before:
            self._before[parent] = dict(self._files.of(parent)[0]) if parent else {}
        return self._before[parent]

    def rescan(self):
        """Forget what hot commits read: the next batch looks again (after packs were added)."""
        self._lives = None

    def repack_wanted(self, index: ChunkIndex) -> bool:
        """Some hot commit decodes more than its share of the bound: a batch of no files packs again."""
        hot, _, waste = self._lifetimes(index)
        return any(waste[i] > REPACK_AT * hot.written[i] for i in waste)

    def pack(self, manifests: list[str], source: ChunkSource, held, progress=None) -> tuple[dict[str, WorkResult],
                                                                                        PackBuilder]:
        """Pack the chunks of these manifests not yet packed where our results go: by a pack this side
        decodes and re-hashes, whose data `held(pack)` says is there (the remote, proven; or here). Commit
        the packs, return ({manifest: result}, the packs made). A failure is charged to its file."""
        started = time.monotonic()
        index = source.index
        index.refresh()
        source.prefetch(manifests)   # everything the batch reads, in one fetch
        results: dict[str, WorkResult] = {}
        segments: list[Segment] = []
        small: list[SmallFile] = []
        seen: set[str] = set()       # a chunk shared by two files of the batch is packed once
        file_chunks: dict[str, Manifest] = {}
        cap = manifest_store.max_file_size(self.repo)
        for manifest in manifests:
            # Everything here costs the file's distinct chunks, never its size: a hostile manifest saying
            # "this 64 KiB chunk, 49,152 times" (a 3 GiB file of zeros, as a real one also is) reads,
            # verifies and packs one chunk.
            try:
                chunks = self._read_manifest(manifest, cap)
                distinct = chunks.distinct()
                todo = [(c, s) for c, s in distinct if c not in seen and not source.verify_packed(c, held)]
                head = source.read(*distinct[0])[:SAMPLE_BYTES] if distinct else b""
                pending = {c for c, _ in todo}
                shared = sum(s * n for c, s, n in chunks.counted() if c not in pending)   # other files hold these
                fmt = sniff_format(head)
                if 0 < shared <= TINY_DUPLICATE and todo and fmt in WHOLE_FILE_FORMATS:
                    # A few bytes shared with other files (a PNG's IEND, say) are packed again so
                    # the whole-file codec still sees the whole file.
                    todo, pending = distinct, set(chunks.chunks)
                    duplicated = shared
                else:
                    duplicated = 0
                for c, s in todo:   # every chunk is read (and so verified) before anything is packed
                    source.read(c, s)
                large = chunks.size > SMALL_FILE
                if large:   # planning reads the file's other chunks too: a hostile pack may fail it here
                    planned = plan_segments(chunks, lambda c: c not in pending, source.read)
            except Exception as e:   # noqa: BLE001 - charged to this file; the rest of the batch goes on
                results[manifest] = WorkResult(manifest, False, error=note_error(e))
                continue
            seen.update(pending)
            file_chunks[manifest] = chunks
            results[manifest] = WorkResult(manifest, True, raw_bytes=chunks.size, duplicate_bytes=duplicated)
            if large:
                segments += planned
            elif todo:
                whole = fmt in WHOLE_FILE_FORMATS and len(todo) == len(distinct) and whole_file_chunks(chunks)
                small.append(SmallFile(manifest, list(chunks) if whole else todo, head))
        segments += group_small_files(small, mostly_printable, self.device)
        hot, uses, waste = self._lifetimes(index)
        again = [(c, s) for c, s in chunks_to_repack(index, hot, uses, waste) if c not in seen]
        source.fetch(source.needed(dict(again)))   # the old packs, in one request
        readable = []
        for c, s in again:   # read (and so verified) like the batch's own chunks; one that fails stays where it is
            try:
                source.read(c, s)
                readable.append((c, s))
            except ReadError as e:
                self.log(f"chunk {c} stays where it is: {e}")
        again = readable
        self.repacked = frozenset(c for c, _ in again)
        if again:
            self.log(f"packing {len(again)} packed chunk(s) again for the read bound of hot commits")
            segments.append(Segment(again))
        @functools.cache
        def usable(pack: str) -> bool:   # a base for deltas: held where they go, decoded and re-hashed here
            return held(pack) and (index.is_verified(pack) or not source.pack_errors(pack))

        segments, bases = group_by_lifetime(
            segments, hot, waste, keep_whole=self.archive,
            plan_deltas=lambda groups: deltas.plan(groups, hot, waste, index, self._previous, usable))
        owner = {c: m for m, chunks in file_chunks.items() for c in chunks.chunks}   # packed again: no owner
        packer = PackBuilder(self.repo, self.effort, source, segments, self.threads, self.archive)
        keyframes = [s for s in segments if id(s) not in bases]
        try:
            crash_points.reached("packing")
            for phase in (keyframes, [s for s in segments if id(s) in bases]):   # a base is packed before its deltas
                if phase is not keyframes:
                    self._resolve_bases(packer, source, phase, bases)
                self._account(packer, packer.add_all(phase), owner, results, progress)
            packer.commit(self.store, self.id)
        except BaseException:
            packer.discard()   # a full disk: packs no ref reaches must not keep it full
            raise
        index.refresh()
        ratios: dict[str, float] = {}
        for manifest, chunks in file_chunks.items():
            r = results[manifest]
            r.stored_bytes = int(round(r.stored_bytes))
            r.file_stored_bytes = _file_share(self.repo, index, chunks, ratios)
        _share_time(results, time.monotonic() - started)
        return results, packer

    def _account(self, packer: PackBuilder, packed, owner: dict[str, str], results: dict[str, WorkResult],
                 progress):
        """Charge each packed segment's bytes to the files it holds."""
        for segment, outcome in packed:
            for part, (choice, raw_size) in self._packed_parts(packer, segment, outcome, owner, results):
                for c, s in part.chunks:
                    if c not in owner:
                        continue
                    r = results[owner[c]]
                    r.packed_bytes += s
                    r.stored_bytes += s * len(choice.encoded) / raw_size
                    r.codecs[choice.codec_names] = r.codecs.get(choice.codec_names, 0) + s
                self.log(f"segment of {len(part.chunks)} chunks: {human(raw_size)} -> "
                         f"{human(len(choice.encoded))} with {choice.codec_names}"
                         + (f" against pack {part.base[:12]}" if part.base else ""))
                if progress:
                    progress(raw_size)
                crash_points.reached("segment-packed")

    def _resolve_bases(self, packer: PackBuilder, source: ChunkSource, delta_segments: list[Segment],
                       bases: dict[int, deltas.Base]):
        """Each delta segment's base pack and its decoded bytes (a keyframe of this batch: its own bytes, as its
        pack decodes to them). A base that could not be had leaves the segment a keyframe."""
        for segment in delta_segments:
            base = bases[id(segment)]
            try:
                if base.segment is not None:
                    keyframe = base.segment
                    pack = packer.made.get(id(keyframe))
                    if pack is None:   # it failed, or was packed file by file
                        continue
                    data = b"".join(source.read(c, s) for c, s in keyframe.chunks)
                else:
                    pack, data = base.pack, source.decoded_pack(base.pack)
            except ReadError as e:
                self.log(f"no delta against {base.pack or 'a segment'}: {e}")
                continue
            packer.base_bytes[pack] = data
            segment.base = pack

    def _packed_parts(self, packer: PackBuilder, segment: Segment, outcome, owner: dict[str, str],
                      results: dict[str, WorkResult]) -> list:
        """[(segment packed, (choice, raw size))]. A segment that failed (outcome is its exception) is packed
        again file by file (small files share segments), and a file whose own part still fails is charged."""
        if not isinstance(outcome, Exception):
            return [(segment, outcome)]
        error = outcome
        parts: dict[str | None, Segment] = {}   # None: chunks packed again, which no file of the batch owns
        for c, s in segment.chunks:
            parts.setdefault(owner.get(c), Segment(format=segment.format, hot=segment.hot)).chunks.append((c, s))
        if len(parts) == 1:
            [manifest] = parts
            self._charge(results.get(manifest), error)
            return []
        done = []
        for manifest, part in parts.items():
            try:
                done.append((part, packer.add(part)))
            except Exception as e:   # noqa: BLE001
                self._charge(results.get(manifest), e)
        return done

    def _charge(self, result: WorkResult | None, error: BaseException):
        if result is None:   # chunks packed again: they stay where they were
            self.log(f"could not pack chunks again: {note_error(error)}")
            return
        result.ok, result.error = False, note_error(error)
        self.log(f"failed {result.manifest}: {result.error}")

    def _read_manifest(self, manifest: str, cap: int) -> Manifest:
        """Bounded like every manifest read (store.manifests); a file no pointer sizes here may not be
        larger than panini.maxFileSize."""
        try:
            chunks = manifest_store.load(self.repo, manifest, cap)
        except TooLarge:
            raise ReadError(f"manifest {manifest} describes a file larger than {manifest_store.MAX_FILE_SIZE_KEY} "
                            f"allows ({cap} bytes)") from None
        except ManifestError as e:
            raise ReadError(f"manifest {manifest}: {e}") from None
        if chunks is None:
            raise ReadError(f"manifest {manifest} is missing")
        return chunks


def _share_time(results: dict[str, WorkResult], seconds: float):
    """Spread a batch's packing time over its files by raw bytes (the dashboard's throughput)."""
    done = [r for r in results.values() if r.ok]
    total = sum(r.raw_bytes for r in done)
    for r in done:
        r.seconds = seconds * r.raw_bytes / total if total else seconds / len(done)


def _file_share(repo, index: ChunkIndex, chunks: Manifest, ratios: dict[str, float]) -> int:
    """A file's share of the packs holding its chunks (each chunk, as often as the file holds it, its
    share of its pack's encoded size; a chunk still raw counts in full). `ratios` caches each pack's
    ratio across files."""
    total = 0.0
    for chunk, size, count in chunks.counted():
        located = index.locate(chunk)
        if not located:
            total += size * count
            continue
        pack = located[0][0]
        if pack not in ratios:
            ratios[pack] = _pack_ratio(repo, pack)
        total += size * count * ratios[pack]
    return int(round(total))


def _pack_ratio(repo, pack: str) -> float:
    """Encoded / decoded size of a pack; 1.0 when its recipe cannot be read or omits its encoded size
    (it saves nothing then)."""
    try:
        recipe = parse_recipe(repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"", repo.hex_len)
    except (RecipeError, ObjectTooLarge):
        return 1.0
    if recipe.get("encoded_size") is None:
        return 1.0
    return recipe["encoded_size"] / recipe["size"] if recipe["size"] else 0.0
