"""PackBuilder: encodes a batch's segments into packs (a data blob and its recipe each) and commits them."""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..codecs import CodecError, train_zstd_dict
from ..format.recipe import DELTA_RECIPE_FORMAT, RECIPE_FORMAT, parse_recipe
from ..format.segment import Segment
from ..git.objects import object_id
from ..git.pack import PackWriter
from ..store import bulk
from ..store.chunk_source import ChunkSource
from ..store.shared import PACK_REFS, Store
from .planner import choose

DICT_SIZE = 112 << 10
DICT_SAMPLE = 16 << 10


class PackBuilder:
    """Encodes segments into packs (a data blob + its recipe) and commits them: recipes to the store,
    data and dictionaries to a new bulk ref refs/panini/packs/<commit>."""

    def __init__(self, repo, effort: int, source: ChunkSource, segments: list[Segment], threads: int = 1,
                 archive: bool = False):
        self.repo, self.effort, self.source, self.threads = repo, effort, source, threads
        self.archive = archive               # the strongest codecs for hot segments too (panini.profile)
        self.writer = PackWriter(repo.objects_dir, repo.algo, sync=repo.fsync.wants("pack"))
        self.recipes: list[str] = []         # pack ids (recipe oids)
        self.bulk: list[str] = []            # data blobs and dictionaries the packs need
        self.refs: dict[str, str] = {}       # the ref holding them once committed
        self.dicts: dict[str, bytes] = {}    # dictionaries some pack uses
        self.yielded: list[str] = []
        self.made: dict[int, str] = {}       # id(segment) -> the pack it became
        self.base_bytes: dict[str, bytes] = {}   # base pack -> its decoded bytes, for delta segments
        self._dict = self._train_dict(segments) if effort >= 2 else None

    def _train_dict(self, segments: list[Segment]) -> tuple[str, bytes] | None:
        """One zstd dictionary shared by the batch's small text segments, offered as a candidate."""
        samples = []
        for segment in segments:
            if segment.format is None and len(segment.chunks) > 1:
                samples += [self.source.read(c, s)[:DICT_SAMPLE] for c, s in segment.chunks]
        if len(samples) < 16:
            return None
        try:
            data = train_zstd_dict(samples, DICT_SIZE)
        except CodecError:
            return None
        return object_id("blob", data, self.repo.algo), data

    def add(self, segment: Segment):
        """Encode and add one segment here and now: (choice, raw size)."""
        raw = self._read(segment)
        return self._add(segment, raw, self._choose(segment, raw, None)), len(raw)

    def add_all(self, segments: list[Segment]):
        """Encode segments, `threads` at a time (and their candidates in as many threads), and add them
        in order: yields (segment, (choice, raw size)), or (segment, the exception) for a segment that
        failed, so the caller charges its files and the rest go on. Chunks are read and packs written in
        this thread only; at most `threads` segments are in memory ahead of the writer."""
        if self.threads <= 1:
            for segment in segments:
                try:
                    yield segment, self.add(segment)
                except Exception as e:  # noqa: BLE001 - the caller charges it to the segment's files
                    yield segment, e
            return
        with ThreadPoolExecutor(self.threads) as by_segment, ThreadPoolExecutor(self.threads) as by_codec:
            ahead: deque = deque()
            for segment in segments + [None]:
                if segment is not None:
                    try:
                        raw = self._read(segment)
                        ahead.append((segment, raw, by_segment.submit(self._choose, segment, raw, by_codec)))
                    except Exception as e:  # noqa: BLE001
                        ahead.append((segment, None, e))
                while ahead and (segment is None or len(ahead) > self.threads):
                    done, raw, pending = ahead.popleft()
                    try:
                        if isinstance(pending, Exception):
                            raise pending
                        yield done, (self._add(done, raw, pending.result()), len(raw))
                    except Exception as e:  # noqa: BLE001
                        yield done, e

    def _read(self, segment: Segment) -> bytes:
        return b"".join(self.source.read(c, s) for c, s in segment.chunks)

    def _deps(self, segment: Segment | None = None) -> dict[str, bytes]:
        deps = {self._dict[0]: self._dict[1]} if self._dict else {}
        if segment is not None and segment.base in self.base_bytes:
            deps[segment.base] = self.base_bytes[segment.base]
        return deps

    def _choose(self, segment: Segment, raw: bytes, pool):
        extra = [[("zstd", {"level": 19, "dict": self._dict[0]})]] if self._dict else []
        if segment.base in self.base_bytes:
            extra.append([("zstd", {"level": 19, "prefix": segment.base})])
        return choose(raw, segment.format, self.effort, self._deps(segment), extra, pool,
                      fast_decode=segment.hot and not self.archive)

    def _add(self, segment: Segment, raw: bytes, choice):
        deps = self._deps()
        used = sorted({step["params"]["dict"] for step in choice.steps if "dict" in step["params"]})
        base = next((step["params"]["prefix"] for step in choice.steps if "prefix" in step["params"]), None)
        for oid in used:
            self.dicts[oid] = deps[oid]
        data_oid = self.writer.add("blob", choice.encoded)
        offsets, pos = [], 0
        for c, s in segment.chunks:
            offsets.append([c, pos, s])
            pos += s
        recipe = {"format": RECIPE_FORMAT, "size": len(raw), "steps": choice.steps, "deps": used,
                  "data": data_oid, "encoded_size": len(choice.encoded), "chunks": offsets, "tried": choice.tried}
        if base is not None:
            recipe.update(format=DELTA_RECIPE_FORMAT, base=base)
        recipe_bytes = json.dumps(recipe, sort_keys=True).encode()
        parse_recipe(recipe_bytes, self.repo.hex_len)   # a recipe readers would refuse must never replace chunks
        self.recipes.append(self.writer.add("blob", recipe_bytes))
        self.made[id(segment)] = self.recipes[-1]
        self.bulk.append(data_oid)
        self.yielded += [c for c, _ in segment.chunks]
        return choice

    def commit(self, store: Store, worker_id: str):
        """Bulk ref first, then the store: a recipe is never recorded before its data is reachable."""
        for data in self.dicts.values():
            self.bulk.append(self.writer.add("blob", data))
        self.writer.flush()
        if not self.recipes:
            return
        commit, listing = bulk.write_bulk(self.repo, self.bulk, bulk.PACK_MESSAGE)
        self.repo.update_ref(PACK_REFS + commit, commit, None, bulk.PACK_MESSAGE)
        if self.repo.ref(PACK_REFS + commit, peel=False) != commit:
            raise OSError(f"could not create {PACK_REFS + commit}")
        self.refs = {PACK_REFS + commit: commit}
        for recipe in self.recipes:   # each one's decode reproduced every chunk before it was kept
            self.source.index.mark_verified(recipe)
        store.add_packs(self.recipes, f"panini: {worker_id} packs {len(self.yielded)} chunks into "
                                      f"{len(self.recipes)} packs", bulk=(commit, listing))

    def discard(self):
        """Delete this batch's packs unless a ref already reaches them (then gc decides)."""
        if not self.refs:
            self.writer.discard()
