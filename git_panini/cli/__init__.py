"""The `git panini` command line: one thin module per command; the logic lives in git_panini/*."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Large files in Git itself: deduplicated chunk trees, verified bit-perfect.")


def _version(value: bool):
    if value:
        from .. import __version__
        typer.echo(f"git-panini {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")):
    """Large files in Git itself: deduplicated chunk trees, verified bit-perfect."""


def _register():
    from . import (add, demo, env, fetch, filter_process, fsck, hook, install, ls_files, prune, pull, push, status,
                   track, verify, work)
    from . import dispatch, init_ci, report
    for module in (install, track, add, status, ls_files, verify, fsck, env, push, fetch, pull, prune,
                   work, dispatch, report, init_ci, filter_process, hook, demo):
        module.register(app)


_register()


def main():
    app()   # entry.py turns store, remote and git errors into one line
