"""`git panini logs [last | NAME] [--clear]`: the errors the filter, the hooks and commands logged here."""

from __future__ import annotations

import os
import shutil

import typer

from ..util import logs as logs_mod
from .common import JsonOption, console, fail, open_repo, print_json


def logs(name: str = typer.Argument(None, help="'last', or a log's name from the list."),
         clear: bool = typer.Option(False, "--clear", help="Remove every log."),
         json: bool = JsonOption):
    """List logged errors (newest last), or show one in full."""
    repo = open_repo()
    directory = logs_mod.log_dir(repo.common_dir)
    found = logs_mod.names(directory)
    if clear:
        shutil.rmtree(directory, ignore_errors=True)
        if json:
            print_json({"removed": found})
        else:
            console.print(f"removed {len(found)} log(s)", markup=False)
        return
    if name is None and json:
        print_json({"logs": found})
        return
    if name is None:
        for entry in found:
            console.print(entry, markup=False, highlight=False)
        if not found:
            console.print("no logs", markup=False)
        return
    if name == "last":
        if not found:
            fail("no logs")
        name = found[-1]
    if name not in found:
        fail(f"no log named {name!r} (git panini logs lists them)", code=2)
    with open(os.path.join(directory, name)) as f:
        text = f.read()
    if json:
        print_json({"name": name, "text": text})
    else:
        console.print(text.rstrip("\n"), markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(logs)
