"""`git panini textconv FILE`: what Git's diff driver `panini` runs to show a tracked file's text or summary."""

from __future__ import annotations

import sys

import typer

from .common import fail, open_repo


def textconv(path: str = typer.Argument(..., help="The file Git wants to diff (a pointer or real bytes).")):
    """Print a tracked file's text for git diff, or one summary line for a binary (set up by install)."""
    from ..gitio import textconv as textconv_mod
    repo = open_repo()
    try:
        textconv_mod.convert(repo, path, sys.stdout.buffer)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
        fail(f"cannot read {path}: {e.strerror}", code=2)
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


def register(app: typer.Typer):
    app.command(hidden=True)(textconv)
