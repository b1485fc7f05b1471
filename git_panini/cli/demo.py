"""`git panini demo [DIR]`: run the embedded end-to-end demo in a fresh directory."""

from __future__ import annotations

import os
import tempfile

import typer

from .common import console, fail


def demo(directory: str = typer.Argument(None, help="Empty directory to work in (default: a new temp dir).")):
    """Create a repo with a bare remote, add real files, push, work, clone, verify."""
    if directory and os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        fail(f"{directory} is not an empty directory: give the demo an empty or new one", code=2)
    directory = directory or tempfile.mkdtemp(prefix="panini-demo-")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        fail(f"cannot create {directory}: {e.strerror}", code=2 if isinstance(e, (FileNotFoundError, NotADirectoryError)) else 1)
    from ..ops.demo import run_demo
    console.print(f"demo directory: {directory}", markup=False)
    raise typer.Exit(run_demo(directory, console))


def register(app: typer.Typer):
    app.command()(demo)
