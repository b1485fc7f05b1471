"""Helpers the command modules share: opening the repo, printing JSON or tables, failing cleanly."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from ..repo import NotARepository, Repo
from ..units import human  # noqa: F401 (the commands import it from here)

# soft_wrap: a message is one line however narrow the terminal (or the 80 columns rich assumes when
# output is piped), so an error line with a 64-hex id stays greppable in CI logs.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def open_repo() -> Repo:
    try:
        return Repo(".")
    except NotARepository as e:
        fail(str(e))


def fail(message: str, code: int = 1):
    err_console.print(f"git-panini: {message}", style="red", markup=False, highlight=False)
    raise typer.Exit(code)


def tree_or_fail(repo, treeish: str) -> str:
    """The revision as given, once Git says it names a tree (or it is the HEAD of a branch with no commit
    yet, which holds no files); else a usage error (exit 2)."""
    proc = repo.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{treeish}^{{tree}}", check=False)
    unborn = treeish == "HEAD" and repo.git("symbolic-ref", "-q", "HEAD", check=False).returncode == 0
    if proc.returncode != 0 and not unborn:
        fail(f"bad revision {treeish!r}", code=2)
    return treeish


def print_json(data):
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def remote_or_fail(repo, remote: str | None) -> str:
    from ..sync import default_remote
    remote = remote or default_remote(repo)
    if remote is None:
        fail("no remote given and none configured")
    return remote
