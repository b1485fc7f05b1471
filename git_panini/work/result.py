"""What working one file came to (WorkResult), and an error as a note keeps it (note_error)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codecs import CodecError
from ..format.manifest import ManifestError
from ..format.recipe import RecipeError
from ..store.chunk_source import ReadError

MAX_ERROR = 400            # characters of an error kept in a note: one line, never a traceback


def note_error(error: BaseException) -> str:
    """An exception as a note's error: our own errors as they read, anything else with its type."""
    text = str(error).strip().splitlines()
    text = text[0] if text else ""
    if not isinstance(error, (ReadError, ManifestError, RecipeError, CodecError)):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text[:MAX_ERROR]


@dataclass
class WorkResult:
    manifest: str
    ok: bool
    raw_bytes: int = 0
    packed_bytes: int = 0        # bytes of chunks this job packed
    stored_bytes: int = 0        # their encoded size
    codecs: dict = field(default_factory=dict)   # chain -> bytes of input
    duplicate_bytes: int = 0     # bytes packed again although another pack holds them
    file_stored_bytes: int = 0   # the whole file's share of every pack holding its chunks, after this job
    seconds: float = 0.0         # its share (by raw bytes) of the batch's packing time
    error: str | None = None
