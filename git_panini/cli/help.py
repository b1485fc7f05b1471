"""`git panini help [COMMAND]`: the help of the whole tool or of one command, as `-h` prints it."""

from __future__ import annotations

import typer

from .common import fail


def help(ctx: typer.Context, command: str = typer.Argument(None, help="The command to explain.")):
    """Show the help of git panini or of one of its commands."""
    root = ctx.find_root()
    if command is None:
        typer.echo(root.get_help())
        return
    sub = root.command.get_command(root, command)
    if sub is None:
        fail(f"no command {command!r} (see 'git panini -h')", code=2)
    typer.echo(sub.get_help(type(root)(sub, info_name=command, parent=root)))


def register(app: typer.Typer):
    app.command(name="help")(help)
