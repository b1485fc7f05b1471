"""Reading a manifest from the repository, bounded: the blob's size is checked before it is read
(format.manifest.MAX_MANIFEST_SIZE), what it costs in memory grows with its distinct chunks (Manifest),
and a reader may refuse a manifest describing more bytes than it allows (a pointer's size, or
panini.maxFileSize for a file no pointer sizes: the worker). Every reader of manifests goes through load().

The cap is for reading and packing only: a decision to keep data (prune, fsck's reachability) never
applies it, so a file above it is still kept whole."""

from __future__ import annotations

from ..format.manifest import MAX_MANIFEST_SIZE, Manifest, ManifestError, parse
from ..git.repo import ObjectTooLarge

MAX_FILE_SIZE_KEY = "panini.maxFileSize"
DEFAULT_MAX_FILE_SIZE = 1 << 40    # 1 TiB: any file git-panini is meant for; raise it with git config
_caps: dict[str, int] = {}


def max_file_size(repo) -> int:
    """panini.maxFileSize (bytes; git's k/m/g suffixes), read once per repository and process."""
    cap = _caps.get(repo.common_dir)
    if cap is None:
        try:
            cap = repo.config_int(MAX_FILE_SIZE_KEY) or 0
        except ValueError:
            cap = 0
        cap = cap if cap > 0 else DEFAULT_MAX_FILE_SIZE
        _caps[repo.common_dir] = cap
    return cap


def load(repo, manifest: str, max_size: int | None = None) -> Manifest | None:
    """The manifest, or None when its blob is not here. ManifestError when it cannot be a manifest we
    read: larger than a manifest may be, malformed, or (format.manifest.TooLarge) describing more than
    max_size bytes."""
    try:
        data = repo.read_kind(manifest, "blob", MAX_MANIFEST_SIZE)
    except ObjectTooLarge as e:
        raise ManifestError(str(e)) from None
    if data is None:
        return None
    return parse(data, repo.hex_len, max_size)
