"""The `git panini` command line: one thin module per command, loaded when it runs; the logic lives in
git_panini/*."""

from __future__ import annotations

import importlib
import sys

import typer
from typer.main import get_command

from ..util.errors import one_line

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

PROG = "git panini"


def _usage_name(argument) -> str:
    """An argument in a usage line as git writes its own: PATH..., [REV], import|export|info (typer writes
    required ones as {paths}...)."""
    name = _argument_name(argument)
    return name if argument.required or name.startswith("[") else f"[{name}]"


def _argument_name(argument) -> str:
    """PATHS..., REF...: the metavar, else the name in capitals, never typer's type (`<list[str]>`)."""
    name = argument.metavar or argument.name.upper()
    return name + ("..." if argument.nargs != 1 and "..." not in name else "")


def _option_name(option) -> str:
    """-I, --include PATTERN; --top N; --json: the option's names and a word for its value (its metavar, N
    for a number, the choices, else its name in capitals), never typer's type (`<int range>`, `<str>`)."""
    value = ""
    if not getattr(option, "is_flag", False) and not getattr(option, "count", False):
        kind = getattr(getattr(option, "type", None), "name", "")
        choices = getattr(getattr(option, "type", None), "choices", None)
        value = " " + (option.metavar or ("N" if kind.split(" ")[0] in ("int", "integer", "float")
                                          else "|".join(map(str, choices)) if choices
                                          else option.name.upper().replace("_", "-")))

    def names(opts):
        return ", ".join(sorted(opts, key=lambda o: len(o) - len(o.lstrip("-")))) + value
    return " / ".join(names(o) for o in (option.opts, option.secondary_opts) if o)


def _clean_help_record(get_help_record, name):
    """The parameter's help line with `name(param)` as its first column (typer's own shows types)."""
    def record(self, ctx):
        found = get_help_record(self, ctx)
        return None if found is None else (name(self), found[1])
    return record


# Help and usage lines as Git writes its own, whichever typer draws them (its private renderers change
# from one minor version to the next: only these public click methods are replaced).
typer.core.TyperArgument.get_usage_pieces = lambda self, ctx: [_usage_name(self)]
typer.core.TyperArgument.get_help_record = _clean_help_record(typer.core.TyperArgument.get_help_record,
                                                              _argument_name)
typer.core.TyperOption.get_help_record = _clean_help_record(typer.core.TyperOption.get_help_record, _option_name)

# Each command's module, in the order help lists them. A command's module (and what it imports: requests,
# PyGithub, the worker) loads only when that command runs: every git panini call paid for all of them.
COMMANDS = {
    "install": "install", "uninstall": "install", "track": "track", "untrack": "track", "add": "add",
    "status": "status", "ls-files": "ls_files", "verify": "verify", "fsck": "fsck", "env": "env", "push": "push",
    "fetch": "fetch", "pull": "pull", "checkout": "pull", "prune": "prune", "lock": "lock", "unlock": "lock",
    "locks": "locks", "work": "work", "serve": "serve", "migrate": "migrate", "dispatch": "dispatch",
    "report": "report", "dashboard": "dashboard", "init-ci": "init_ci", "logs": "logs",
    "filter-process": "filter_process", "hook": "hook", "textconv": "textconv", "merge-driver": "merge_driver",
    "demo": "demo", "help": "help",
}
SETTINGS = dict(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                context_settings={"help_option_names": ["-h", "--help"]})


class LazyGroup(typer.core.TyperGroup):
    """The top-level group: a command is built from its module the first time it is asked for."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, name: str):
        command = super().get_command(ctx, name)
        if command is None and name in COMMANDS:
            sub = typer.Typer(**SETTINGS)
            sub.callback()(lambda: None)   # a group even for one command, so each is found by its name
            importlib.import_module(f".{COMMANDS[name]}", __package__).register(sub)
            for loaded, each in get_command(sub).commands.items():
                self.add_command(each, loaded)
            command = super().get_command(ctx, name)
        return command


# Plain help (no boxed panels): it reads the same in a terminal, a pipe, a CI log and the man page.
app = typer.Typer(cls=LazyGroup, no_args_is_help=True, **SETTINGS,
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


def main() -> int:
    """Run the command line; a usage error is one line and exit 2 (entry.py does the same for store, remote
    and git errors)."""
    from . import common
    try:
        code = app(prog_name=PROG, standalone_mode=False) or 0
        if code == 130 and not common.failed:   # typer turns a Ctrl-C into a silent exit 130
            sys.stderr.write("git-panini: interrupted\n")
        return code
    except NoArgsIsHelpError as e:
        sys.stdout.write(e.format_message() + "\n")
        return 0
    except UsageError as e:
        command = e.ctx.command_path if e.ctx is not None else _command_path(sys.argv[1:])
        sys.stderr.write(f"git-panini: {one_line(e.format_message())} (see '{command} -h')\n")
        return 2
    except typer.Abort:
        sys.stderr.write("git-panini: interrupted\n")
        return 130
    except ClickException as e:
        sys.stderr.write(f"git-panini: {one_line(e.format_message())}\n")
        return e.exit_code


def _command_path(args: list[str]) -> str:
    """`git panini COMMAND` for an error click raised without its context (an option given a value)."""
    name = next((a for a in args if not a.startswith("-")), None)
    return f"{PROG} {name}" if name in COMMANDS else PROG
