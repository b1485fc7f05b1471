"""`git panini merge-driver %O %A %B %P`: what Git's merge driver `panini` runs on a tracked file's conflict."""

from __future__ import annotations

import os

import typer

from ..gitio import merge_driver as mergedriver
from .common import err_console, fail, open_repo


def merge_driver(base: str = typer.Argument(..., help="Git's %O: the common ancestor's version."),
                 ours: str = typer.Argument(..., help="Git's %A: our version; the result is left here."),
                 theirs: str = typer.Argument(..., help="Git's %B: their version."),
                 path: str = typer.Argument(..., help="Git's %P: the file's path.")):
    """Merge a tracked file: same content, or a text merge (conflicts marked as Git does); a binary keeps ours."""
    repo = open_repo()
    for given in (base, ours, theirs):   # Git's temporary files: a person running this by hand may name none
        if not os.path.isfile(given):
            fail(f"{given}: no such file", code=2)
    outcome = mergedriver.merge(repo, base, ours, theirs, path)
    if outcome.message:
        err_console.print(f"git-panini: {outcome.message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(outcome.code)


def register(app: typer.Typer):
    app.command(name="merge-driver", hidden=True)(merge_driver)
