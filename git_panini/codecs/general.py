"""General-purpose codecs: store, zstd, xz, brotli and PPMd, each decoded with a hard output bound."""

import lzma
import subprocess
import sys
import zlib
from pathlib import Path

from .base import (
    Codec,
    CodecError,
    bool_param,
    check_crc,
    check_keys,
    int_param,
    pow2_at_least,
)

_READ_STEP = 1 << 20


def _too_big(max_output: int) -> CodecError:
    return CodecError(f"output exceeds max_output {max_output} (decompression bomb or size lie)")


class Stored(Codec):
    """Bytes kept as they are (the chain for what no codec shrinks)."""

    id = 1
    name = "store"

    def _encode(self, data, params, deps):
        check_keys(params, set())
        return data, {}

    def _decode(self, data, params, deps, max_output):
        check_keys(params, set())
        if len(data) > max_output:
            raise _too_big(max_output)
        return data


class Zstd(Codec):
    id = 2
    name = "zstd"
    requires = ("zstandard", "zstandard")

    def _dict(self, zstd, params, deps):
        """A trained dictionary ("dict": its blob), or another pack's decoded bytes as raw content to match
        against ("prefix": that pack's id; a delta against an earlier version, decoded from the base pack)."""
        if "dict" in params and "prefix" in params:
            raise CodecError("parameters dict and prefix exclude each other")
        key = "dict" if "dict" in params else "prefix" if "prefix" in params else None
        if key is None:
            return None
        oid = params[key]
        if not isinstance(oid, str):
            raise CodecError(f"parameter {key} must be an oid string")
        if oid not in deps:
            raise CodecError(f"missing {'dictionary' if key == 'dict' else 'base'} {oid}")
        if key == "prefix":
            return zstd.ZstdCompressionDict(deps[oid], dict_type=zstd.DICT_TYPE_RAWCONTENT)
        return zstd.ZstdCompressionDict(deps[oid])

    def _encode(self, data, params, deps):
        zstd = self.lib()
        check_keys(params, {"level", "long", "dict", "prefix"})
        level = int_param(params, "level", 1, 22, 19)
        window_log = int_param(params, "long", 0, 31, 0)
        dictionary = self._dict(zstd, params, deps)
        if window_log:
            cparams = zstd.ZstdCompressionParameters.from_level(
                level, window_log=window_log, enable_ldm=1, write_checksum=1
            )
            cctx = zstd.ZstdCompressor(dict_data=dictionary, compression_params=cparams)
        else:
            cctx = zstd.ZstdCompressor(level=level, dict_data=dictionary, write_checksum=True)
        recorded = {"level": level}
        if window_log:
            recorded["long"] = window_log
        if dictionary is not None:
            key = "dict" if "dict" in params else "prefix"
            recorded[key] = params[key]
        return cctx.compress(data), recorded

    def _decode(self, data, params, deps, max_output):
        zstd = self.lib()
        check_keys(params, {"level", "long", "dict", "prefix"})
        dictionary = self._dict(zstd, params, deps)
        frame = zstd.get_frame_parameters(data)
        if frame.content_size != zstd.CONTENTSIZE_UNKNOWN and frame.content_size > max_output:
            raise _too_big(max_output)
        if _zstd_frame_length(zstd, data) != len(data):
            raise CodecError("trailing bytes after the zstd frame")
        # Our encoder shrinks the window to the input (+ dictionary) size, so a larger window is hostile.
        dict_size = len(deps[params.get("dict") or params["prefix"]]) if dictionary is not None else 0
        window = min(max(pow2_at_least(max_output + dict_size) * 2, 1 << 20), 1 << 31)
        dctx = zstd.ZstdDecompressor(dict_data=dictionary, max_window_size=window)
        reader = dctx.stream_reader(data, read_across_frames=False)
        parts, total = [], 0
        while True:
            chunk = reader.read(min(_READ_STEP, max_output + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > max_output:
                raise _too_big(max_output)
            parts.append(chunk)
        out = b"".join(parts)
        if frame.content_size != zstd.CONTENTSIZE_UNKNOWN and frame.content_size != len(out):
            raise CodecError("zstd frame is truncated")
        return out


def _zstd_frame_length(zstd, data: bytes) -> int:
    """Compressed length of the single frame at the start of data, by walking its block headers."""
    pos = zstd.frame_header_size(data)
    while True:
        if pos + 3 > len(data):
            raise CodecError("zstd frame is truncated")
        header = int.from_bytes(data[pos:pos + 3], "little")
        block_type, block_size = (header >> 1) & 3, header >> 3
        if block_type == 3:
            raise CodecError("reserved zstd block type")
        pos += 3 + (1 if block_type == 1 else block_size)
        if header & 1:
            break
    if data[4] & 0x04:  # frame header descriptor: content checksum flag
        pos += 4
    if pos > len(data):
        raise CodecError("zstd frame is truncated")
    return pos


def train_zstd_dict(samples: list[bytes], size: int) -> bytes:
    """Train a zstd dictionary of at most size bytes; its git oid is what the zstd "dict" param names."""
    zstd = Zstd().lib()
    try:
        return zstd.train_dictionary(size, list(samples)).as_bytes()
    except zstd.ZstdError as exc:
        raise CodecError(f"zstd dictionary training failed: {exc}") from None


# liblzma's LZMA2 dictionary size for presets 0-9 (the extreme flag does not change it).
_XZ_PRESET_DICT = (1 << 18, 1 << 20, 1 << 21, 1 << 22, 1 << 22, 1 << 23, 1 << 23, 1 << 24, 1 << 25, 1 << 26)


_XZ_BCJ = {"x86": lzma.FILTER_X86, "arm64": getattr(lzma, "FILTER_ARM64", lzma.FILTER_ARM)}


class Xz(Codec):
    id = 3
    name = "xz"

    def _encode(self, data, params, deps):
        check_keys(params, {"preset", "extreme", "bcj"})
        preset = int_param(params, "preset", 0, 9, 9)
        extreme = bool_param(params, "extreme", False)
        bcj = params.get("bcj")
        if bcj not in (None, *_XZ_BCJ):
            raise CodecError(f"unknown xz branch filter {str(bcj)[:20]!r}")
        flags = preset | (lzma.PRESET_EXTREME if extreme else 0)
        # Clamp the dictionary to the input so decode can bound memory by max_output.
        filters = [{"id": lzma.FILTER_LZMA2, "preset": flags,
                    "dict_size": min(_XZ_PRESET_DICT[preset], max(4096, pow2_at_least(len(data))))}]
        if bcj:  # machine code: branch targets made absolute compress better (the xz stream records it)
            filters.insert(0, {"id": _XZ_BCJ[bcj]})
        encoded = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters)
        return encoded, {"preset": preset, "extreme": extreme, **({"bcj": bcj} if bcj else {})}

    def _decode(self, data, params, deps, max_output):
        check_keys(params, {"preset", "extreme", "bcj"})
        memlimit = max(4096, pow2_at_least(max_output)) + (1 << 20)
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=memlimit)
        parts, total = [], 0
        chunk = dec.decompress(data, max_output + 1)
        while True:
            total += len(chunk)
            if total > max_output:
                raise _too_big(max_output)
            parts.append(chunk)
            if dec.eof:
                break
            if dec.needs_input:
                raise CodecError("xz stream is truncated")
            chunk = dec.decompress(b"", max_output + 1 - total)
        if dec.unused_data:
            raise CodecError("trailing bytes after the xz stream")
        return b"".join(parts)


class Brotli(Codec):
    id = 4
    name = "brotli"
    requires = ("brotli", "brotli")

    def lib(self):
        brotli = super().lib()
        if not hasattr(brotli.Decompressor, "can_accept_more_data"):
            raise CodecError("codec brotli needs brotli>=1.2 (bounded decompression)")
        return brotli

    def _encode(self, data, params, deps):
        brotli = self.lib()
        check_keys(params, {"quality", "lgwin"})
        quality = int_param(params, "quality", 0, 11, 11)
        lgwin = int_param(params, "lgwin", 10, 24, 24)
        encoded = brotli.compress(data, quality=quality, lgwin=lgwin)
        return encoded, {"quality": quality, "lgwin": lgwin, "crc32": zlib.crc32(data)}

    def _decode(self, data, params, deps, max_output):
        brotli = self.lib()
        check_keys(params, {"quality", "lgwin", "crc32"})
        dec = brotli.Decompressor()
        # The limit stops buffer growth; one step may overshoot it, so it is checked after each call.
        chunk = dec.process(data, output_buffer_limit=max_output + 1)
        parts, total = [], 0
        while True:
            total += len(chunk)
            if total > max_output:
                raise _too_big(max_output)
            parts.append(chunk)
            if dec.is_finished():
                break
            if dec.can_accept_more_data():
                raise CodecError("brotli stream is truncated")
            chunk = dec.process(b"", output_buffer_limit=max_output + 1 - total)
        out = b"".join(parts)
        check_crc(params, out)
        return out


_PPMD_FEED = 8 << 10       # input bytes per pyppmd encode() call ...
_PPMD_BLOCK = 32 << 10     # ... whose output must stay below pyppmd's first output block


class Ppmd(Codec):
    id = 5
    name = "ppmd"
    requires = ("pyppmd", "pyppmd")
    _MAX_MEM = 1 << 30

    def _encode(self, data, params, deps):
        pyppmd = self.lib()
        check_keys(params, {"order", "mem"})
        order = int_param(params, "order", 2, 64, 6)
        mem = int_param(params, "mem", 1 << 11, self._MAX_MEM, 16 << 20)
        enc = pyppmd.Ppmd7Encoder(order, mem)
        parts = [enc.encode(data[i:i + _PPMD_FEED]) for i in range(0, len(data), _PPMD_FEED)]
        # pyppmd (1.3.1 and before) drops the range coder's bytes that do not fit when one encode() call's output
        # fills its first 32 KiB output block: the stream then fails to decode (wrong bytes, "truncated",
        # trailing bytes, a crashed decoder; issue 19). Fed in small pieces, no call's output gets near it.
        if any(len(part) >= _PPMD_BLOCK for part in parts):
            raise CodecError("ppmd: an encode call filled pyppmd's output block (bytes may be lost)")
        encoded = b"".join(parts) + enc.flush()
        # PPMd7 has no end marker or checksum: the length and a crc32 travel in the recipe.
        return encoded, {"order": order, "mem": mem, "size": len(data), "crc32": zlib.crc32(data)}

    def _decode(self, data, params, deps, max_output):
        self.lib()
        check_keys(params, {"order", "mem", "size", "crc32"})
        order = int_param(params, "order", 2, 64)
        mem = int_param(params, "mem", 1 << 11, self._MAX_MEM)
        size = int_param(params, "size", 0, 1 << 62)
        if size > max_output:
            raise _too_big(max_output)
        out = _ppmd_decode_isolated(data, order, mem, size)
        check_crc(params, out)
        return out


def _ppmd_decode_isolated(data: bytes, order: int, mem: int, size: int) -> bytes:
    """Decode in a child process with memory and CPU limits; a crash there becomes a CodecError here."""
    memory_limit = mem + 2 * size + (512 << 20)
    cpu_seconds = 30 + size // (1 << 18)
    cmd = [sys.executable, "-I", str(Path(__file__).with_name("ppmd_child.py")),
           str(order), str(mem), str(size), str(memory_limit), str(cpu_seconds)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        out = proc.stdout.read(size + 1)
        message = proc.stderr.read(4096).decode("utf-8", "replace").strip()
        status = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
    if status == 1:
        raise CodecError(f"corrupt ppmd data: {message.splitlines()[-1] if message else 'no detail'}")
    if status == 3:
        raise CodecError("trailing bytes after the ppmd stream")
    if status != 0:
        raise CodecError(f"ppmd decoder crashed on corrupt data (exit status {status})")
    if len(out) != size:
        raise CodecError("ppmd stream is truncated")
    return out
