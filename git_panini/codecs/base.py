"""Codec base class, error type and the parameter checks every codec shares."""

import importlib
import zlib


class CodecError(Exception):
    """Malformed/hostile encoded data, unknown codec, size lies, missing dep: one-line message."""


def _short(value) -> str:
    # Hostile recipes may carry huge values; keep messages one short line.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_keys(params, allowed: set[str]) -> None:
    if not isinstance(params, dict):
        raise CodecError(f"params must be a dict, not {type(params).__name__}")
    unknown = set(params) - allowed
    if unknown:
        raise CodecError(f"unknown parameters {_short(sorted(map(str, unknown)))}")


def int_param(params: dict, key: str, lo: int, hi: int, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise CodecError(f"missing parameter {key}")
    # bool is an int subclass; a recipe saying level=true is malformed, not level 1.
    if type(value) is not int or not lo <= value <= hi:
        raise CodecError(f"parameter {key}={_short(value)} is not an integer in [{lo}, {hi}]")
    return value


def bool_param(params: dict, key: str, default: bool) -> bool:
    value = params.get(key, default)
    if type(value) is not bool:
        raise CodecError(f"parameter {key}={_short(value)} is not a boolean")
    return value


def check_crc(params: dict, out: bytes) -> None:
    """Codecs whose format carries no checksum record one, so corruption is an error, not wrong bytes."""
    if zlib.crc32(out) != int_param(params, "crc32", 0, 0xFFFFFFFF):
        raise CodecError("crc32 mismatch: encoded data is corrupt")


def pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


class Codec:
    id: int
    name: str
    version: int = 1
    # (import name, pip name) of the optional library the codec needs; None when stdlib suffices.
    requires: tuple[str, str] | None = None

    def available(self) -> bool:
        try:
            self.lib()
        except CodecError:
            return False
        return True

    def lib(self):
        """The codec's library module (None if stdlib suffices); CodecError says what to install."""
        if self.requires is None:
            return None
        try:
            return importlib.import_module(self.requires[0])
        except ImportError:
            raise CodecError(f"codec {self.name} needs {self.requires[1]}") from None

    def encode(self, data: bytes, params: dict, deps: dict[str, bytes]) -> tuple[bytes, dict]:
        """Returns (encoded, recorded_params); raises CodecError if this codec can't handle the input."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"{self.name}: data must be bytes")
        if not isinstance(deps, dict):
            raise CodecError(f"{self.name}: deps must be a dict")
        try:
            return self._encode(bytes(data), params, deps)
        except CodecError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # Rust panics (pyo3) derive from BaseException
            raise CodecError(f"{self.name}: {type(exc).__name__}: {_first_line(exc)}") from None

    def decode(self, data: bytes, params: dict, deps: dict[str, bytes], max_output: int) -> bytes:
        """Never returns more than max_output bytes; any failure is a CodecError."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"{self.name}: data must be bytes")
        if not isinstance(deps, dict):
            raise CodecError(f"{self.name}: deps must be a dict")
        if type(max_output) is not int or max_output < 0:
            raise CodecError(f"{self.name}: max_output must be a non-negative integer")
        try:
            out = self._decode(bytes(data), params, deps, max_output)
        except CodecError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # library errors of every kind, incl. MemoryError and Rust panics
            raise CodecError(f"{self.name}: {type(exc).__name__}: {_first_line(exc)}") from None
        if len(out) > max_output:
            raise CodecError(f"{self.name}: output exceeds max_output {max_output}")
        return out

    def _encode(self, data: bytes, params: dict, deps: dict[str, bytes]) -> tuple[bytes, dict]:
        raise NotImplementedError

    def _decode(self, data: bytes, params: dict, deps: dict[str, bytes], max_output: int) -> bytes:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<codec {self.name} id={self.id}>"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
