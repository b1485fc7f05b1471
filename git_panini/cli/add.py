"""`git panini add PATH...`: `git add` with a progress bar over the bytes the clean filter chunks."""

from __future__ import annotations

import os
import subprocess

import typer

from .common import fail, open_repo

PATHSPEC_MAGIC = ("*", "?", "[")   # a glob, or ":(...)" magic: Git matches it, we do not check it


def _size_of(paths: list[str]) -> int:
    total = 0
    for path in paths:
        if os.path.isfile(path):
            total += os.path.getsize(path)
        for root, _, files in os.walk(path) if os.path.isdir(path) else ():
            if ".git" not in root.split(os.sep):
                total += sum(os.path.getsize(os.path.join(root, f)) for f in files
                             if os.path.isfile(os.path.join(root, f)))
    return total


def _check_paths(repo, paths: list[str]):
    """A usage error (exit 2) for a path outside the work tree or matching nothing, before Git (whose own
    message would come with a second line of ours) sees it. A missing path Git knows is a removal to stage."""
    root = os.path.realpath(repo.work_tree)
    for path in paths:
        if path.startswith(":") or any(c in path for c in PATHSPEC_MAGIC):
            continue
        absolute = os.path.abspath(path)   # the parent resolved, not a symlink the path itself names
        where = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
        if os.path.commonpath([root, where]) != root:
            fail(f"{path}: outside the repository", code=2)
        if not os.path.lexists(path) and repo.git("ls-files", "--error-unmatch", "--", where,
                                                  check=False).returncode != 0:
            fail(f"{path}: no such file", code=2)


def add(paths: list[str] = typer.Argument(..., help="Files or directories, as for git add.")):
    """Stage files; tracked ones are chunked into the store by the clean filter."""
    from ..gitio.filter import PROGRESS_ENV  # the filter's modules: loaded by this command only
    repo = open_repo()
    if repo.work_tree is None:
        fail("add needs a working tree")
    _check_paths(repo, paths)
    env = dict(os.environ, **{PROGRESS_ENV: str(_size_of(paths))})
    code = subprocess.run(["git", "add", "--", *paths], env=env).returncode
    if code != 0:
        fail("git add failed (see above)")


def register(app: typer.Typer):
    app.command()(add)
