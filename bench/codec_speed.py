"""How fast each codec chain decodes, and what a delta against the previous version saves: the figures behind
the hot tier's codecs (git_panini/work/planner.py FAST_DECODE) and delta packs (git_panini/work/deltas.py).

    python -m bench.codec_speed [--seed N]

Part 1 encodes 4 MiB of this Python's stdlib sources (and a zlib stream for deflate-expand) with each chain
and times one decode in this process. Part 2 replays the `history` scenario's first 60 commits
(bench/history.py, quick scale) and stores each changed file with zstd -19 alone, and against the file's
previous version as zstd's raw-content dictionary (what a delta pack does, without the read bound): % of raw.
"""

from __future__ import annotations

import argparse
import glob
import os
import sysconfig
import tempfile
import time
import zlib

import zstandard

from git_panini import codecs

from .history import Lineage

CHAINS = [
    ("zstd -19", [("zstd", {"level": 19})]),
    ("zstd -22 --long", [("zstd", {"level": 22, "long": 27})]),
    ("brotli q11", [("brotli", {"quality": 11, "lgwin": 24})]),
    ("xz -9e", [("xz", {"preset": 9, "extreme": True})]),
    ("ppmd o8", [("ppmd", {"order": 8, "mem": 256 << 20})]),
]


def decode_speeds() -> list[tuple[str, float, float]]:
    """(chain, encoded/raw, decode MB/s)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    text = b"".join(open(f, "rb").read() for f in sorted(glob.glob(os.path.join(stdlib, "*.py"))))[:4 << 20]
    stream = zlib.compress(bytes((i * 7) % 251 for i in range(2 << 20)), 6)
    rows = []
    for name, chain, data in [(n, c, text) for n, c in CHAINS] + [
            ("deflate-expand > zstd -19", [("deflate-expand", {}), ("zstd", {"level": 19})], stream)]:
        encoded, steps = codecs.encode_chain(data, chain, {})
        start = time.perf_counter()
        assert codecs.decode_chain(encoded, steps, {}, len(data)) == data
        rows.append((name, len(encoded) / len(data), len(data) / (time.perf_counter() - start) / 1e6))
    return rows


def delta_savings(seed: int, commits: int = 60) -> dict[str, tuple[int, int, int]]:
    """{path: (raw bytes, zstd -19 alone, zstd -19 against the previous version)} over the changed files."""
    out: dict[str, tuple[int, int, int]] = {}
    previous: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as workdir:
        lineage = Lineage(seed, 0.55, workdir)
        for n in range(commits):
            for path, data in lineage.commit(n).items():
                if path in previous:
                    alone = len(zstandard.ZstdCompressor(level=19).compress(data))
                    prefix = zstandard.ZstdCompressionDict(previous[path], dict_type=zstandard.DICT_TYPE_RAWCONTENT)
                    delta = len(zstandard.ZstdCompressor(level=19, dict_data=prefix).compress(data))
                    raw, a, d = out.get(path, (0, 0, 0))
                    out[path] = (raw + len(data), a + alone, d + delta)
                previous[path] = data
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("chain                      encoded/raw   decode MB/s")
    for name, ratio, speed in decode_speeds():
        print(f"{name:26s} {ratio:11.3f} {speed:13.1f}")
    print("\nfile (history, 60 commits) raw MB   zstd -19   against the previous version")
    for path, (raw, alone, delta) in sorted(delta_savings(args.seed).items()):
        print(f"{path:26s} {raw / 1e6:6.1f} {alone / raw:10.1%} {delta / raw:13.1%}")


if __name__ == "__main__":
    main()
