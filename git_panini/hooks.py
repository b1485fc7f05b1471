"""Git hooks: install ours beside the user's own, and run them (pre-push, post-checkout, post-merge, post-commit)."""

from __future__ import annotations

import os
import stat
import sys
from importlib import resources

from . import journal, pointers
from .filter import NEEDS_FETCH
from .reader import ChunkSource, missing_chunks
from .sync import SyncError, default_remote, fetch, push

HOOK_NAMES = ("pre-push", "post-checkout", "post-merge", "post-commit")
MARKER = b"git-panini "


def hooks_dir(repo) -> str:
    path = repo.git("rev-parse", "--git-path", "hooks").stdout.decode().strip()
    return path if os.path.isabs(path) else os.path.join(repo.work_tree or repo.git_dir, path)


def _is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return MARKER in f.read(200)
    except OSError:
        return False


def install(repo) -> list[str]:
    directory = hooks_dir(repo)
    os.makedirs(directory, exist_ok=True)
    done = []
    for name in HOOK_NAMES:
        path = os.path.join(directory, name)
        if os.path.exists(path) and not _is_ours(path):
            local = path + ".local"
            if os.path.exists(local):
                raise FileExistsError(f"both {name} and {name}.local exist; merge them by hand first")
            os.rename(path, local)
        with open(path, "wb") as f:
            f.write(resources.files("git_panini").joinpath("hooks", name).read_bytes())
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(path)
    return done


def uninstall(repo) -> list[str]:
    directory = hooks_dir(repo)
    removed = []
    for name in HOOK_NAMES:
        path = os.path.join(directory, name)
        if _is_ours(path):
            os.remove(path)
            removed.append(path)
            if os.path.exists(path + ".local"):
                os.rename(path + ".local", path)
    return removed


def run(repo, name: str, args: list[str], stdin: bytes) -> int:
    """Our part of a hook (the shell script has already run the user's chained `<name>.local`)."""
    return {"pre-push": _pre_push, "post-checkout": _refetch_missing, "post-merge": _refetch_missing,
            "post-commit": _replay_journal}[name](repo, args, stdin)


def _err(message: str):
    sys.stderr.write(f"git-panini: {message}\n")


def _pre_push(repo, args, stdin: bytes) -> int:
    remote = args[0] if args else default_remote(repo)
    zero = "0" * repo.hex_len
    revs = []
    for line in stdin.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] != zero:
            revs.append(parts[1])
            if parts[3] != zero and repo.exists(parts[3]):
                revs.append("^" + parts[3])
    if revs:
        source = ChunkSource(repo)
        try:
            for found in pointers.in_revs(repo, revs):
                if found.pointer is None:
                    _err(f"refusing to push: {found.path} holds a malformed pointer ({found.error})")
                    return 1
                missing = missing_chunks(source, found.pointer)
                if missing:
                    _err(f"refusing to push: {found.path} needs {len(missing)} chunk(s) this repository "
                         f"lacks (first {missing[0]}); run `git panini fetch` or re-add the file")
                    return 1
        finally:
            source.close()
    try:
        push(repo, remote)
    except SyncError as e:
        _err(f"refusing to push the branch: {e}")
        return 1
    return 0


def _refetch_missing(repo, args, stdin) -> int:
    """A smudge found chunks missing (the filter left a list of paths): fetch, then check them out again."""
    marker = os.path.join(repo.panini_dir, NEEDS_FETCH)
    try:
        with open(marker, encoding="utf-8") as f:
            paths = sorted({line.rstrip("\n") for line in f if line.strip()})
        os.remove(marker)
    except FileNotFoundError:
        return 0
    remote = default_remote(repo)
    if remote is None:
        _err(f"{len(paths)} file(s) could not be checked out (chunks missing) and no remote is configured")
        return 0
    try:
        fetch(repo, remote)
    except SyncError as e:
        _err(f"{len(paths)} file(s) lack chunks and fetching failed: {e}")
        return 0
    # Only files the failed smudge left absent: never overwrite what is in the working tree.
    tracked = set(repo.git("ls-files", "-z", "--", *paths).stdout.decode().split("\0"))
    paths = [p for p in paths if p in tracked and not os.path.lexists(os.path.join(repo.work_tree, p))]
    if not paths:
        return 0
    proc = repo.git("checkout", "--", *paths, check=False)
    if proc.returncode != 0:
        _err(f"after fetching from {remote}, {len(paths)} file(s) still cannot be checked out: "
             + proc.stderr.decode(errors="replace").strip().splitlines()[-1])
    return 0


def _replay_journal(repo, args, stdin) -> int:
    recorded, lost = journal.replay(repo)
    for path in lost:
        _err(f"{path}: its data was lost with a crashed filter; add it again: git add --renormalize -- '{path}'")
    return 0


def main(name: str, args: list[str]) -> int:
    """`git-panini hook NAME ARGS...`, as the hook scripts call it."""
    from .repo import NotARepository, Repo
    if name not in HOOK_NAMES:
        _err(f"unknown hook {name!r}")
        return 2
    try:
        repo = Repo(".")
    except NotARepository as e:
        _err(str(e))
        return 2
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    return run(repo, name, args, stdin)
