"""Writes the decompression bombs the tests read (test_codecs, test_hostile_packs): zeros compressed by each
codec, then gzipped so that the repository holds about 1 KB per bomb instead of the 32-160 KB streams. Building
them on every run cost about 30 s of CPU (the xz ones 12-14 s each). Run from anywhere:
`python tests/data/bombs/make.py`; the output is deterministic for a given zstandard/liblzma/brotli."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import brotli
import zstandard

MiB, GiB = 1 << 20, 1 << 30


def zeros(compress, flush, total: int, block: int) -> bytes:
    """`total` zero bytes compressed without ever holding them in memory."""
    data = bytes(block)
    return b"".join(compress(data) for _ in range(total // block)) + flush()


def bombs() -> dict[str, bytes]:
    zstd_1 = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj(size=GiB)
    zstd_3 = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj(size=GiB)
    xz = lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=0)  # 256 KiB dictionary
    br = brotli.Compressor(quality=0)
    return {
        "zeros-1GiB-level1.zst": zeros(zstd_1.compress, zstd_1.flush, GiB, MiB),
        "zeros-1GiB-level3.zst": zeros(zstd_3.compress, zstd_3.flush, GiB, 16 * MiB),
        "zeros-1GiB-preset0.xz": zeros(xz.compress, xz.flush, GiB, MiB),
        "zeros-256MiB-quality0.br": zeros(br.process, br.finish, 256 * MiB, MiB),
    }


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for name, data in bombs().items():
        (here / f"{name}.gz").write_bytes(gzip.compress(data, 9, mtime=0))
        print(f"{name}.gz: {len(data)} bytes of stream")
