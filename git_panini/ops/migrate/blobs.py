"""The history's blobs as migrate reads them: git/repo.py's cat-file reader under small pack windows."""

from __future__ import annotations

import subprocess

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


def files_in_history(repo, names: list[str], *pathspec: str):
    """(blob id, path) of every regular file any commit of the refs holds, each pair once: what the rewrite
    visits (or those of the pathspec only). (rev-list --objects would name a blob under one path only,
    however many it sits at.)"""
    proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, "log", "--raw", "-z", "--no-abbrev", "--no-renames",
                             "--root", "--diff-merges=first-parent", "--format=", *names, "--", *pathspec],
                            stdout=subprocess.PIPE)
    seen, meta = set(), None
    try:
        for token in split_nul(proc.stdout):
            if meta is not None:
                fields, meta = meta.split(), None
                if fields[1] in ("100644", "100755") and fields[4] != "D" and (fields[3], token) not in seen:
                    seen.add((fields[3], token))
                    yield fields[3], token
            elif token.startswith(":"):
                meta = token
    finally:
        proc.stdout.close()
        proc.wait()


def split_nul(stream):
    rest = b""
    while block := stream.read(1 << 16):
        *tokens, rest = (rest + block).split(b"\0")
        for token in tokens:
            yield token.lstrip(b"\n").decode("utf-8", "surrogateescape")
