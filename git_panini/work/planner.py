"""Chooses a codec chain per segment: ranks candidates on samples, encodes only the winners whole, keeps
the smallest that decodes exactly (when none does, the next-ranked, and so on: raw only when all failed).
Every limit is a count or a size, never a clock, so the same input at the same effort packs to the same
bytes on any machine under any load."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import zstandard

from .. import codecs

SAMPLES = 4                   # samples per segment that rank the candidates ...
SAMPLE_BYTES = 64 << 10       # ... of this many bytes each, spread evenly over the (transformed) segment
# Whole-segment encodes per effort, the best-ranked first; the runner-up, when within CLOSE of the leader's
# estimate, is encoded whole too (effort 2), since samples cannot see long-range matches and flatter a
# dictionary trained on them. `python -m bench.close_threshold --scale 3` (bench.corpus, 53 MB, 2026-12-08):
# runner-ups won by 0.7-4.2 % at gaps of 0.9-5.0 % and lost at most gaps above; 3 % saves 0.20 % (balanced)
# and 0.85 % (archive) of stored bytes (1 %: 0.00 and 0.44 %) for a second encode of 3 of 14 and 4 of 31
# ranked segments. 5 % saved 0.50 % (balanced) but changed enough choices to take a lineage in
# tests/test_amplification.py over the read bound (decode 1.5-1.6x): left for a choice that weighs read cost.
FINALISTS = {0: 1, 1: 1, 2: 1, 3: 1 << 30}
CLOSE = 0.03

# Transforms rewrite the whole input (they need its structure), so they run once on the whole segment
# and the codec after them is ranked on samples of their output.
TRANSFORMS = {"deflate-expand"}
# Codecs that need a whole file (no sample of a JPEG is a JPEG): at effort <= 2 the first that succeeds wins.
WHOLE_ONLY = {"jpeg-lepton", "jpeg-jxl"}
# What a hot checkout may wait on: decoders of hundreds of MB/s per core. `python -m bench.codec_speed`
# (4 MiB of the stdlib's sources, one process, 2-core machine, 2026-12-08): zstd -19 340 MB/s, brotli q11 258,
# xz -9e 113, PPMd 7, deflate-expand (which deflates again to decode) 1.2.
FAST_DECODE = {"store", "zstd", "brotli"}

_TEXT_BYTES = bytes(b for b in range(256) if 32 <= b < 127 or b in (9, 10, 13) or b >= 128)


def mostly_printable(data: bytes) -> bool:
    """Over 95 % of the first 64 KiB is printable text bytes, and no NUL (how the planner ranks chains; not
    whether the bytes decode as UTF-8, which is what textconv.decodes_as_text asks)."""
    sample = bytes(data[:65536])
    if not sample or b"\0" in sample:
        return False
    # translate() deletes the printable bytes in C; what is left is the binary remainder.
    printable = len(sample) - len(sample.translate(None, _TEXT_BYTES))
    return printable / len(sample) > 0.95


def candidates(fmt: str | None, text: bool, effort: int, fast_decode: bool = False) -> list[list[tuple[str, dict]]]:
    """Codec chains to try, most promising first; fast_decode: only chains of FAST_DECODE codecs (hot data).

    Effort 1 picks one fast chain per kind of data that still beats per-file `xz -9e` (PNG and gzip
    streams cost too much to expand there); effort 2 keeps the chains that win on real files (profiled
    on bench.corpus: brotli q11, zstd -19/-22, xz -9e and a second deflate-expand pass saved 0.05 % at
    most, and PPMd beats xz on expanded deflate streams); effort 3 tries everything."""
    if effort <= 0:
        return [[("zstd", {"level": 3})]]
    if fast_decode:
        if effort == 1:
            return [[("zstd", {"level": 12})]]
        chains = [[("zstd", {"level": 19})], [("zstd", {"level": 22, "long": 27})]]
        return chains + ([[("brotli", {"quality": 11, "lgwin": 24})]] if effort >= 3 else [])
    if effort == 1:
        if fmt == "jpeg":
            return [[("jpeg-lepton", {})], [("zstd", {"level": 12})]]
        if fmt == "zip":   # archives expand cheaply and gain the most; PNG and gzip searches cost more
            return [[("deflate-expand", {}), ("zstd", {"level": 12})], [("zstd", {"level": 12})]]
        if fmt == "elf":
            return [[("xz", {"preset": 3, "bcj": "x86"})]]
        if text:   # PPMd would store 15 % less, but its check decodes in a child process at encode speed
            return [[("zstd", {"level": 12})]]
        return [[("xz", {"preset": 3})]]
    extreme = effort >= 3
    chains: list[list[tuple[str, dict]]] = []
    if fmt == "jpeg":
        chains += [[("jpeg-lepton", {})], [("jpeg-jxl", {})]]
    if fmt == "elf":
        chains += [[("xz", {"preset": 9, "extreme": extreme, "bcj": "x86"})]]
    if fmt in ("zip", "png", "gzip") or fmt is None and not text:
        # What deflate streams expand to: PPMd beats xz there on sources (order 12) and on PNG rows
        # (order 6) and runs several times faster; the samples say which order.
        chains += [[("deflate-expand", {}), ("ppmd", {"order": 6, "mem": 64 << 20})],
                   [("deflate-expand", {}), ("ppmd", {"order": 12, "mem": 256 << 20})]]
    if text:
        chains += [[("ppmd", {"order": 8, "mem": 256 << 20})]]
    chains += [[("xz", {"preset": 9, "extreme": extreme})]]
    if effort >= 3:
        if fmt in ("zip", "png", "gzip") or fmt is None and not text:
            chains += [[("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})]]
        if fmt == "zip":   # PNGs and archives inside ZIP members expand on a second pass
            chains += [[("deflate-expand", {}), ("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})]]
        chains += [[("zstd", {"level": 19})], [("brotli", {"quality": 11, "lgwin": 24})],
                   [("zstd", {"level": 22, "long": 27})]]
        if fmt in ("zip", "png"):
            chains += [[("deflate-expand", {}), ("zstd", {"level": 19})]]
        if text:
            chains += [[("ppmd", {"order": 16, "mem": 1 << 30})]]
    return chains


def _incompressible(data: bytes) -> bool:
    """A fast zstd pass over samples: if it saves under 2 %, no codec here will save much more."""
    sample = b"".join(data[i:i + 65536] for i in range(0, len(data), max(len(data) // 8, 65536)))
    return len(zstandard.ZstdCompressor(level=1).compress(sample)) > 0.98 * len(sample)


def samples(data: bytes) -> list[bytes]:
    """SAMPLES slices of SAMPLE_BYTES at fixed, evenly spread offsets (the whole input when it is small)."""
    if len(data) <= SAMPLES * SAMPLE_BYTES:
        return [data]
    step = (len(data) - SAMPLE_BYTES) // (SAMPLES - 1)
    return [data[i * step:i * step + SAMPLE_BYTES] for i in range(SAMPLES)]


@dataclass
class Choice:
    encoded: bytes
    steps: list[dict]
    tried: list[dict]     # {"chain": "a>b", "estimate": n | None, "size": n | None, "error": str | None}

    @property
    def codec_names(self) -> str:
        return ">".join(step["codec"] for step in self.steps)


class _Serial:
    """Runs submitted work at once, in the caller's thread: choose() without a pool."""

    class _Done:
        def __init__(self, fn, args):
            try:
                self.value, self.error = fn(*args), None
            except BaseException as e:   # re-raised by result(), as a Future would
                self.value, self.error = None, e

        def result(self):
            if self.error is not None:
                raise self.error
            return self.value

    def submit(self, fn, *args):
        return self._Done(fn, args)


def _encode(data: bytes, chain, deps):
    """(encoded, steps) or the CodecError that stopped it."""
    try:
        return codecs.encode_chain(data, chain, deps)
    except codecs.CodecError as e:
        return e


def _estimate(parts: list[bytes], chain, deps, scale: float):
    """Estimated whole size of chain's output: its output on the samples, scaled to the whole."""
    total = 0
    for part in parts:
        out = _encode(part, chain, deps)
        if isinstance(out, codecs.CodecError):
            return out
        total += len(out[0])
    return int(total * scale)


def choose(data: bytes, fmt: str | None, effort: int, deps: dict[str, bytes] | None = None,
           extra: list | None = None, pool: Executor | None = None, fast_decode: bool = False) -> Choice:
    """Smallest verified encoding of `data` among the candidates (plus `extra` chains, e.g. with a
    trained dictionary in deps; fast_decode: only chains of FAST_DECODE codecs). Independent encodes run
    in `pool`'s threads when one is given (the codecs release the GIL); the result never depends on
    timing."""
    deps = deps or {}
    pool = pool or _Serial()
    chains = candidates(fmt, mostly_printable(data), effort, fast_decode) + (extra or [])
    if fast_decode:
        chains = [c for c in chains if all(name in FAST_DECODE for name, _ in c)]
    chains = [c for c in chains if not any(codecs.denied(name, params) for name, params in c)]
    if effort > 0 and fmt != "jpeg" and _incompressible(data):
        # Random-looking: only a transform that finds deflate streams inside can still win, or a delta
        # against the previous version (work/deltas.py), which random-looking bytes repeat.
        chains = [c for c in chains if c[0][0] in TRANSFORMS or any("prefix" in p for _, p in c)]
    tried: dict[int, dict] = {i: {"chain": ">".join(c for c, _ in chain), "estimate": None, "size": None,
                                  "error": None} for i, chain in enumerate(chains)}
    done: dict[int, tuple[bytes, list[dict]]] = {}     # chain index -> whole encoding

    def record(i, out):
        if isinstance(out, codecs.CodecError):
            tried[i]["error"] = str(out)
        else:
            tried[i]["size"] = len(out[0])
            done[i] = out

    def verified(i) -> bool:
        """done[i] is smaller than the input and decodes back to exactly it; one that decodes otherwise is
        dropped from done, and why is recorded."""
        encoded, steps = done[i]
        if len(encoded) >= len(data):
            return False
        try:
            if codecs.decode_chain(encoded, steps, deps, len(data)) == data:
                return True
            tried[i]["error"] = "decode does not reproduce the input"
        except codecs.CodecError as e:
            tried[i]["error"] = f"decode: {e}"
        del done[i]
        return False

    # Whole-file codecs first, in order: below effort 3 the first that verifies is the answer.
    whole = [i for i, chain in enumerate(chains) if chain[0][0] in WHOLE_ONLY]
    for i in whole:
        record(i, pool.submit(_encode, data, chains[i], deps).result())
        if i in done and effort < 3 and verified(i):
            return Choice(*done[i], list(tried.values()))
    rest = [i for i, chain in enumerate(chains) if chain[0][0] not in WHOLE_ONLY]

    # Each distinct transform prefix runs once on the whole segment.
    prefixes: dict[tuple, object] = {}
    for i in rest:
        key = _prefix(chains[i])
        if key and key not in prefixes:
            prefixes[key] = pool.submit(_encode, data, [(c, dict(p)) for c, p in key], deps)
    transformed = {key: future.result() for key, future in prefixes.items()}

    # Rank on samples of what each back end would see; small inputs are their own sample, encoded whole.
    ranked = []
    jobs = {}
    sampled = sum(1 for i in rest if not isinstance(transformed.get(_prefix(chains[i])), codecs.CodecError)) \
        > FINALISTS.get(effort, 1)   # with no more candidates than finalists, ranking saves nothing
    for i in rest:
        key = _prefix(chains[i])
        base = transformed[key] if key else (data, [])
        if isinstance(base, codecs.CodecError):
            tried[i]["error"] = str(base)
            continue
        tail = chains[i][len(key):]
        parts = samples(base[0]) if sampled else [base[0]]
        if len(parts) == 1:
            jobs[i] = ("whole", pool.submit(_encode, base[0], tail, deps), base)
        else:
            scale = len(base[0]) / sum(len(p) for p in parts)
            jobs[i] = ("estimate", pool.submit(_estimate, parts, tail, deps, scale), base)
    for i, (kind, future, base) in jobs.items():
        out = future.result()
        if kind == "whole":
            record(i, _join(out, base))
            if i in done:
                ranked.append((len(done[i][0]), i))
        elif isinstance(out, codecs.CodecError):
            tried[i]["error"] = str(out)
        else:
            tried[i]["estimate"] = out
            ranked.append((out, i))
    ranked.sort()

    # Encode the best-ranked whole: FINALISTS of them, and at effort 2 the runner-up when its estimate is
    # within CLOSE of the leader's.
    finalists = [i for n, (estimate, i) in enumerate(ranked) if n < FINALISTS.get(effort, 1)
                 or (effort >= 2 and n == 1 and estimate <= ranked[0][0] * (1 + CLOSE))]
    whole_jobs = {i: pool.submit(_encode, *_tail(jobs[i][2], chains[i]), deps) for i in finalists if i not in done}
    for i, future in whole_jobs.items():
        record(i, _join(future.result(), jobs[i][2]))

    # The smallest that decodes back to exactly these bytes. When none does (an encoder wrote a stream its
    # decoder refuses, or other bytes), the next-ranked chain is encoded, and so on: a segment is stored as
    # it is only when no candidate is left.
    later = [i for _, i in ranked if i not in done]
    while True:
        for _, i in sorted((len(encoded), i) for i, (encoded, _) in done.items()):
            if verified(i):
                return Choice(*done[i], list(tried.values()))
        if not later:
            break
        i = later.pop(0)
        record(i, _join(_encode(*_tail(jobs[i][2], chains[i]), deps), jobs[i][2]))
    encoded, steps = codecs.encode_chain(data, [("store", {})], deps)
    return Choice(encoded, steps, list(tried.values()))


def _prefix(chain) -> tuple:
    """The chain's leading transforms, hashable: ((name, ((key, value), ...)), ...)."""
    n = 0
    while n < len(chain) - 1 and chain[n][0] in TRANSFORMS:
        n += 1
    return tuple((name, tuple(sorted(params.items()))) for name, params in chain[:n])


def _tail(base, chain) -> tuple:
    """What a chain's back end encodes whole: the transformed segment and the links after the transforms."""
    return base[0], chain[len(_prefix(chain)):]


def _join(out, base):
    """The tail's encoding after a transform's: the transform's steps come first."""
    if isinstance(out, codecs.CodecError):
        return out
    return out[0], base[1] + out[1]
