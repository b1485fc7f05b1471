"""`git panini demo [DIR]`: run the embedded end-to-end demo in a fresh directory."""

from __future__ import annotations

import tempfile

import typer

from ..demo import run_demo
from .common import console


def demo(directory: str = typer.Argument(None, help="Empty directory to work in (default: a new temp dir).")):
    """Create a repo with a bare remote, add real files, push, work, clone, verify."""
    directory = directory or tempfile.mkdtemp(prefix="panini-demo-")
    console.print(f"demo directory: {directory}", markup=False)
    raise typer.Exit(run_demo(directory, console))


def register(app: typer.Typer):
    app.command()(demo)
