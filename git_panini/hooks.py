"""Git hooks: install ours beside the user's own, and run them (pre-push, post-checkout, post-merge, post-commit)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from importlib import resources

from . import pointers
from .notes import Notes, new_note
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
    """Run the user's chained hook first (same args and stdin), then ours."""
    local = os.path.join(hooks_dir(repo), name + ".local")
    if os.access(local, os.X_OK):
        code = subprocess.run([local, *args], input=stdin).returncode
        if code != 0:
            return code
    return {"pre-push": _pre_push, "post-checkout": _fetch_if_missing, "post-merge": _fetch_if_missing,
            "post-commit": _post_commit}[name](repo, args, stdin)


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


def _fetch_if_missing(repo, args, stdin) -> int:
    """After checkout or merge: if HEAD names chunks we lack, fetch the store once."""
    source = ChunkSource(repo)
    try:
        needs = any(f.pointer and missing_chunks(source, f.pointer) for f in pointers.in_tree(repo, "HEAD"))
    finally:
        source.close()
    remote = default_remote(repo)
    if needs and remote:
        try:
            fetch(repo, remote)
        except SyncError as e:
            _err(str(e))
    return 0


def _post_commit(repo, args, stdin) -> int:
    """Journal repair: every pointer in the new commit gets a status note if it has none."""
    notes = Notes(repo)
    known = notes.all()
    absent = {f.pointer.manifest: new_note(f.pointer.size, 0, 0, 0)
              for f in pointers.in_tree(repo, "HEAD") if f.pointer and f.pointer.manifest not in known}
    if absent:
        notes.put(absent, f"panini: {len(absent)} pending (post-commit)", only_if_absent=True)
    return 0
