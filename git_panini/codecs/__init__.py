"""Codec registry and chain API: codecs keyed by stable ids, chains recorded as recipes decoded with bounds."""

from .base import Codec, CodecError
from .deflate import DeflateExpand
from .general import Brotli, Ppmd, Stored, Xz, Zstd, train_zstd_dict
from .jpeg import JpegJxl, JpegLepton

__all__ = [
    "Codec",
    "CodecError",
    "all_codecs",
    "decode_chain",
    "denied",
    "encode_chain",
    "get",
    "train_zstd_dict",
]

# Ids and names are written into recipes: never renumber, rename or reuse one.
_CODECS: tuple[Codec, ...] = (Stored(), Zstd(), Xz(), Brotli(), Ppmd(), DeflateExpand(), JpegLepton(), JpegJxl())
_BY_ID = {codec.id: codec for codec in _CODECS}
_BY_NAME = {codec.name: codec for codec in _CODECS}
assert len(_BY_ID) == len(_BY_NAME) == len(_CODECS), "codec ids and names must be unique"

_STEP_KEYS = {"codec", "id", "params", "size"}

# Encoder configurations never chosen again: each once wrote a stream that did not decode back to its input.
# (codec id, the parameters that pick it out, what failed and where). A link is denied when its codec id
# matches and it sets every listed parameter to the listed value (its recorded parameters, defaults filled in,
# are checked too). Their decoders stay, so packs written before still read: released decoders never change.
# Empty today: the streams pyppmd 1.3.1 left undecodable (issue 19: at orders 6 to 12 alike, not order 8 alone)
# came from how it was called, which general.Ppmd now avoids; see there.
DENIED: tuple[tuple[int, dict, str], ...] = ()


def denied(name_or_id, params: dict) -> str | None:
    """Why this codec configuration may not encode any more, or None."""
    codec_id = get(name_or_id).id
    for denied_id, listed, why in DENIED:
        if codec_id == denied_id and all(k in params and params[k] == v for k, v in listed.items()):
            return why
    return None


def get(name_or_id) -> Codec:
    if type(name_or_id) is int:
        codec = _BY_ID.get(name_or_id)
    elif isinstance(name_or_id, str):
        codec = _BY_NAME.get(name_or_id)
    else:
        codec = None
    if codec is None:
        text = repr(name_or_id)
        raise CodecError(f"unknown codec {text if len(text) <= 40 else text[:37] + '...'}")
    return codec


def all_codecs() -> list[Codec]:
    return list(_CODECS)


def encode_chain(data: bytes, chain: list[tuple[str, dict]], deps: dict[str, bytes]) -> tuple[bytes, list[dict]]:
    """Apply codecs left to right (transforms first, e.g. [("deflate-expand", {}), ("xz", {"preset": 9})]).
    Returns the encoded bytes and the recipe steps:
    [{"codec": name, "id": id, "params": recorded, "size": input_size_of_this_step}, ...]"""
    if not isinstance(chain, (list, tuple)):
        raise CodecError("chain must be a list of (codec, params) pairs")
    steps = []
    for link in chain:
        if not isinstance(link, (list, tuple)) or len(link) != 2:
            raise CodecError("chain must be a list of (codec, params) pairs")
        codec = get(link[0])
        why = denied(codec.id, link[1]) if isinstance(link[1], dict) else None
        if why is None:
            encoded, recorded = codec.encode(data, link[1], deps)
            why = denied(codec.id, recorded)
        if why is not None:
            raise CodecError(f"{codec.name} {_short_params(link[1])} may not encode: {why}")
        steps.append({"codec": codec.name, "id": codec.id, "params": recorded, "size": len(data)})
        data = encoded
    return data, steps


def decode_chain(data: bytes, steps: list[dict], deps: dict[str, bytes], output_size: int) -> bytes:
    """Undo the steps right to left, dispatching on the stored codec id, bounding each step's output by
    the step's recorded size, and checking the final length equals output_size. Any malformed recipe
    or data raises CodecError."""
    if type(output_size) is not int or output_size < 0:
        raise CodecError("output_size must be a non-negative integer")
    if not isinstance(steps, list):
        raise CodecError("recipe steps must be a list")
    codecs = [_check_step(i, step) for i, step in enumerate(steps)]
    if steps and steps[0]["size"] != output_size:
        raise CodecError(f"recipe says {steps[0]['size']} bytes, expected {output_size}")
    for i in reversed(range(len(steps))):
        size = steps[i]["size"]
        data = codecs[i].decode(data, steps[i]["params"], deps, size)
        if len(data) != size:
            raise CodecError(f"step {i} ({codecs[i].name}) produced {len(data)} bytes, recipe says {size}")
    if len(data) != output_size:
        raise CodecError(f"decoded {len(data)} bytes, expected {output_size}")
    return bytes(data)


def _short_params(params) -> str:
    text = repr(params)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_step(i: int, step) -> Codec:
    if not isinstance(step, dict) or set(step) != _STEP_KEYS:
        raise CodecError(f"step {i} must be a dict with exactly the keys {sorted(_STEP_KEYS)}")
    size = step["size"]
    if type(size) is not int or size < 0:
        raise CodecError(f"step {i} has an invalid size")
    if not isinstance(step["params"], dict):
        raise CodecError(f"step {i} params must be a dict")
    # The id decides; the name is only cross-checked so a mislabelled recipe is caught, not guessed at.
    codec = get(step["id"])
    if step["codec"] != codec.name:
        raise CodecError(f"step {i} names codec {step['codec']!r:.40} but id {codec.id} is {codec.name}")
    return codec
