"""`git panini add PATH...`: `git add` with a progress bar over the bytes the clean filter chunks."""

from __future__ import annotations

import os
import subprocess

import typer

from ..filter import PROGRESS_ENV
from .common import fail, open_repo


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


def add(paths: list[str] = typer.Argument(..., help="Files or directories, as for git add.")):
    """Stage files; tracked ones are chunked into the store by the clean filter."""
    open_repo()
    env = dict(os.environ, **{PROGRESS_ENV: str(_size_of(paths))})
    code = subprocess.run(["git", "add", "--", *paths], env=env).returncode
    if code != 0:
        fail("git add failed (see above)", code)


def register(app: typer.Typer):
    app.command()(add)
