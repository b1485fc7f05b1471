"""`git panini hook NAME`: what the installed hook scripts call (entry.py runs it without the CLI)."""

from __future__ import annotations

import typer


def hook(name: str, args: list[str] = typer.Argument(None)):
    """Run a git-panini hook (called by .git/hooks scripts)."""
    from ..gitio import hooks
    raise typer.Exit(hooks.main(name, args or []))


def register(app: typer.Typer):
    app.command(hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(hook)
