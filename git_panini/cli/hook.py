"""`git panini hook NAME`: what the installed hook scripts call."""

from __future__ import annotations

import sys

import typer

from .. import hooks
from .common import fail, open_repo


def hook(name: str, args: list[str] = typer.Argument(None)):
    """Run a git-panini hook (called by .git/hooks scripts)."""
    if name not in hooks.HOOK_NAMES:
        fail(f"unknown hook {name!r}")
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    raise typer.Exit(hooks.run(open_repo(), name, args or [], stdin))


def register(app: typer.Typer):
    app.command(hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(hook)
