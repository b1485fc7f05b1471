"""Lossless JPEG recompression: Lepton and JPEG XL transcoding, both verified bit-exact at encode."""

import zlib

from .base import Codec, CodecError, check_crc, check_keys, int_param

_LEPTON_MAGIC = b"\xcf\x84"
_U32_MAX = 0xFFFFFFFF


class JpegLepton(Codec):
    id = 7
    name = "jpeg-lepton"
    requires = ("lepton_jpeg_python", "lepton-jpeg-python")

    def _encode(self, data, params, deps):
        lepton = self.lib()
        check_keys(params, set())
        try:
            encoded = lepton.compress_bytes(data)
        except RuntimeError as exc:
            raise CodecError(f"lepton refuses this input: {_reason(exc)}") from None
        if lepton.decompress_bytes(encoded) != data:
            raise CodecError("lepton does not reconstruct this JPEG bit-exactly")
        return encoded, {"crc32": zlib.crc32(data)}

    def _decode(self, data, params, deps, max_output):
        lepton = self.lib()
        check_keys(params, {"crc32"})
        if len(data) < 28 or data[:2] != _LEPTON_MAGIC:
            raise CodecError("not a lepton file")
        # Header bytes 20..24 hold the JPEG size; the library enforces it against max_jpeg_file_size.
        if int.from_bytes(data[20:24], "little") > max_output:
            raise CodecError(f"output exceeds max_output {max_output}")
        try:
            out = lepton.decompress_bytes(data, {"max_jpeg_file_size": min(max_output, _U32_MAX)})
        except RuntimeError as exc:
            raise CodecError(f"corrupt lepton data: {_reason(exc)}") from None
        if len(out) > max_output:
            raise CodecError(f"output exceeds max_output {max_output}")
        check_crc(params, out)
        return out


class JpegJxl(Codec):
    id = 8
    name = "jpeg-jxl"
    requires = ("imagecodecs", "imagecodecs")

    def lib(self):
        imagecodecs = super().lib()
        if not imagecodecs.JPEGXL.available:
            raise CodecError(f"codec {self.name} needs imagecodecs built with libjxl")
        return imagecodecs

    def _encode(self, data, params, deps):
        imagecodecs = self.lib()
        check_keys(params, set())
        try:
            encoded = imagecodecs.jpegxl_encode_jpeg(data)
        except (imagecodecs.JpegxlError, ValueError) as exc:
            raise CodecError(f"libjxl refuses this input: {_reason(exc)}") from None
        try:
            exact = imagecodecs.jpegxl_decode_jpeg(encoded, out=max(len(data), 1)) == data
        except (imagecodecs.JpegxlError, ValueError):
            exact = False
        if not exact:
            raise CodecError("libjxl does not reconstruct this JPEG bit-exactly")
        return bytes(encoded), {"size": len(data), "crc32": zlib.crc32(data)}

    def _decode(self, data, params, deps, max_output):
        imagecodecs = self.lib()
        check_keys(params, {"size", "crc32"})
        size = int_param(params, "size", 1, 1 << 62)
        if size > max_output:
            raise CodecError(f"output exceeds max_output {max_output}")
        try:
            # A fixed-size output buffer: libjxl fails instead of growing it.
            out = imagecodecs.jpegxl_decode_jpeg(data, out=size)
        except (imagecodecs.JpegxlError, ValueError) as exc:
            raise CodecError(f"corrupt jpeg-xl data: {_reason(exc)}") from None
        if len(out) != size:
            raise CodecError("jpeg-xl reconstruction has the wrong size")
        out = bytes(out)
        check_crc(params, out)
        return out


def _reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
