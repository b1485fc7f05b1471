"""Our hook files in a repository's hooks directory: installed beside the user's own (kept as <name>.local),
found, removed. Apart from running them (hooks) because the filter installs them on its first run in a
clone, and must not load what running them needs."""

from __future__ import annotations

import os
import stat
from importlib import resources

from ..util.command import command

HOOK_NAMES = ("pre-push", "post-checkout", "post-merge", "pre-commit", "post-commit")
MARKER = b"git-panini "


def hooks_dir(repo) -> str:
    path = repo.git("rev-parse", "--git-path", "hooks").stdout.decode().strip()
    return path if os.path.isabs(path) else os.path.join(repo.work_tree or repo.git_dir, path)


def is_ours(path: str) -> bool:
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
        if os.path.exists(path) and not is_ours(path):
            local = path + ".local"
            if os.path.exists(local):
                raise FileExistsError(f"both {name} and {name}.local exist; merge them by hand first")
            os.rename(path, local)
        text = resources.files("git_panini").joinpath("hooks", name).read_bytes()
        with open(path, "wb") as f:
            f.write(text.replace(b"\npanini_cmd=git-panini\n", b"\npanini_cmd=" + command().encode() + b"\n", 1))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        done.append(path)
    return done


def ensure_installed(repo, warn) -> None:
    """Install the hooks if this repository lacks them (the filter calls this on its first run in a
    clone made with only the global filter, as git-lfs does): without a pre-push hook, a plain
    `git push` would publish pointers whose data never leaves this machine."""
    directory = hooks_dir(repo)
    if all(is_ours(os.path.join(directory, name)) for name in HOOK_NAMES):
        return
    try:
        install(repo)
    except (OSError, FileExistsError) as e:
        warn(f"could not install the git-panini hooks ({e}); pushes will not carry file data")


def uninstall(repo) -> list[str]:
    directory = hooks_dir(repo)
    removed = []
    for name in HOOK_NAMES:
        path = os.path.join(directory, name)
        if is_ours(path):
            os.remove(path)
            removed.append(path)
            if os.path.exists(path + ".local"):
                os.rename(path + ".local", path)
    return removed
