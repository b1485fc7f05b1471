"""The history's blobs as migrate reads them: git/repo.py's cat-file reader under small pack windows."""

from __future__ import annotations

from ...git.repo import CatFileReader, GitError
from .errors import MigrateError

BLOCK = 4 << 20
# Git maps up to 8 GiB of packs at once by default: reading a whole history's blobs once would keep
# all of it mapped (resident: 2 GiB for a 2 GiB history). Small windows under a small limit bound it.
PACK_WINDOWS = ("-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m")


class BlobReader:
    """Blob sizes and contents through one `git cat-file --batch-command`, contents streamed in blocks (a
    3 GiB blob is never in memory); a missing blob is a MigrateError."""

    def __init__(self, repo):
        self._reader = CatFileReader(repo.git_dir, PACK_WINDOWS)

    def size(self, oid: str) -> int:
        found = self._reader.info(oid)
        if found is None or found[0] != "blob":
            raise MigrateError(f"blob {oid} is missing from this repository")
        return found[1]

    def blocks(self, oid: str):
        """The blob's bytes in blocks; the generator must be consumed to its end before the next request."""
        try:
            yield from self._reader.stream(oid, "blob", BLOCK)
        except GitError as e:
            raise MigrateError(str(e)) from None

    def read(self, oid: str) -> bytes:
        return b"".join(self.blocks(oid))

    def close(self):
        self._reader.close()
