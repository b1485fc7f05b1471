"""Chooses a codec chain per segment: tries candidates within a time budget, keeps the smallest that decodes exactly."""

from __future__ import annotations

import time
from dataclasses import dataclass

import zstandard

from . import codecs

# Seconds one segment may spend on candidates, per effort level (the first candidate always runs).
BUDGET = {0: 0.0, 1: 5.0, 2: 30.0, 3: 300.0}


def is_text(data: bytes) -> bool:
    sample = data[:65536]
    if not sample or b"\0" in sample:
        return False
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13) or b >= 128)
    return printable / len(sample) > 0.95


def candidates(fmt: str | None, text: bool, effort: int) -> list[list[tuple[str, dict]]]:
    """Codec chains to try, most promising first."""
    if effort <= 0:
        return [[("zstd", {"level": 3})]]
    chains: list[list[tuple[str, dict]]] = []
    if fmt == "jpeg":
        chains += [[("jpeg-lepton", {})], [("jpeg-jxl", {})]]
    if fmt == "elf":
        chains += [[("xz", {"preset": 9, "extreme": effort >= 2, "bcj": "x86"})]]
    if fmt in ("zip", "png", "gzip") or fmt is None and not text:
        chains += [[("deflate-expand", {}), ("xz", {"preset": 9, "extreme": effort >= 2})]]
    if fmt == "zip" and effort >= 2:  # PNGs and archives inside ZIP members expand on a second pass
        chains += [[("deflate-expand", {}), ("deflate-expand", {}), ("xz", {"preset": 9, "extreme": True})]]
    if text:
        chains += [[("ppmd", {"order": 8, "mem": 256 << 20})]] if effort >= 2 else []
        chains += [[("xz", {"preset": 9, "extreme": effort >= 2})]]
    else:
        chains += [[("xz", {"preset": 9, "extreme": effort >= 2})]]
    chains += [[("zstd", {"level": 19})]]
    if effort >= 2:
        chains += [[("brotli", {"quality": 11, "lgwin": 24})], [("zstd", {"level": 22, "long": 27})]]
        if fmt in ("zip", "png"):
            chains += [[("deflate-expand", {}), ("zstd", {"level": 19})]]
    if effort >= 3 and text:
        chains += [[("ppmd", {"order": 16, "mem": 1 << 30})]]
    return chains


def _incompressible(data: bytes) -> bool:
    """A fast zstd pass over samples: if it saves under 2 %, no codec here will save much more."""
    sample = b"".join(data[i:i + 65536] for i in range(0, len(data), max(len(data) // 8, 65536)))
    return len(zstandard.ZstdCompressor(level=1).compress(sample)) > 0.98 * len(sample)


@dataclass
class Choice:
    encoded: bytes
    steps: list[dict]
    tried: list[dict]     # {"chain": "a>b", "size": n | None, "seconds": s, "error": str | None}

    @property
    def codec_names(self) -> str:
        return ">".join(step["codec"] for step in self.steps)


def choose(data: bytes, fmt: str | None, effort: int, deps: dict[str, bytes] | None = None,
           extra: list | None = None) -> Choice:
    """Smallest verified encoding of `data` among the candidates (plus `extra` chains, e.g. with a
    trained dictionary in deps) tried within the budget."""
    deps = deps or {}
    best: Choice | None = None
    tried = []
    started = time.monotonic()
    chains = candidates(fmt, is_text(data), effort) + (extra or [])
    if effort > 0 and fmt != "jpeg" and _incompressible(data):
        # Random-looking: only a transform that finds deflate streams inside can still win.
        chains = [c for c in chains if c[0][0] == "deflate-expand"][:1]
    for chain in chains:
        if tried and time.monotonic() - started > BUDGET.get(effort, BUDGET[2]):
            break
        name = ">".join(c for c, _ in chain)
        t0 = time.monotonic()
        try:
            encoded, steps = codecs.encode_chain(data, chain, deps)
            # Keep a candidate only if it decodes back to exactly these bytes.
            if codecs.decode_chain(encoded, steps, deps, len(data)) != data:
                raise codecs.CodecError("decode does not reproduce the input")
        except codecs.CodecError as e:
            tried.append({"chain": name, "size": None, "seconds": round(time.monotonic() - t0, 3), "error": str(e)})
            continue
        tried.append({"chain": name, "size": len(encoded), "seconds": round(time.monotonic() - t0, 3), "error": None})
        if best is None or len(encoded) < len(best.encoded):
            best = Choice(encoded, steps, tried)
    if best is None or len(best.encoded) >= len(data):
        encoded, steps = codecs.encode_chain(data, [("store", {})], deps)
        best = Choice(encoded, steps, tried)
    best.tried = tried
    return best
