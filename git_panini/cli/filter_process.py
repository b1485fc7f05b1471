"""`git panini filter-process`: what git runs as the long-running clean/smudge filter."""

from __future__ import annotations

import typer


def filter_process():
    """Serve Git's filter protocol on stdin/stdout (configured by `git panini install`)."""
    from ..gitio.filter import main
    main()


def register(app: typer.Typer):
    app.command("filter-process")(filter_process)
