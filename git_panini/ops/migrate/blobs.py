"""The history's blobs as migrate reads them: one `git cat-file --batch-command` under small pack windows."""

from __future__ import annotations

import subprocess

from .errors import MigrateError

BLOCK = 4 << 20
# Git maps up to 8 GiB of packs at once by default: reading a whole history's blobs once would keep
# all of it mapped (resident: 2 GiB for a 2 GiB history). Small windows under a small limit bound it.
PACK_WINDOWS = ("-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m")


class BlobReader:
    """Blob sizes and contents through one `git cat-file --batch-command`, contents streamed in blocks (a
    3 GiB blob is never in memory)."""

    def __init__(self, repo):
        self._proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, *PACK_WINDOWS, "cat-file", "--batch-command"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _ask(self, command: str, oid: str) -> int:
        self._proc.stdin.write(f"{command} {oid}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise MigrateError(f"blob {oid} is missing from this repository")
        return int(header[2])

    def size(self, oid: str) -> int:
        return self._ask("info", oid)

    def blocks(self, oid: str):
        """The blob's bytes in blocks; the generator must be consumed to its end before the next request."""
        left = self._ask("contents", oid)
        while left:
            data = self._proc.stdout.read(min(BLOCK, left))
            if not data:
                raise MigrateError("git cat-file stopped early")
            left -= len(data)
            yield data
        self._proc.stdout.read(1)   # the newline after the contents

    def read(self, oid: str) -> bytes:
        return b"".join(self.blocks(oid))

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()
