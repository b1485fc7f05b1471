"""Helpers the command modules share: opening the repo, printing JSON or tables, failing cleanly."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from ..git.repo import NotARepository, Repo
from ..util.units import human, shown  # noqa: F401 (the commands import human from here)


# soft_wrap: a message is one line however narrow the terminal (or the 80 columns rich assumes when
# output is piped), so an error line with a 64-hex id stays greppable in CI logs.
class ShownConsole(Console):
    """A console that prints text through units.shown: paths and names from a repository never reach the
    terminal as escape sequences or line breaks."""

    def print(self, *objects, **kwargs):
        super().print(*(shown(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = ShownConsole(soft_wrap=True)
err_console = ShownConsole(stderr=True, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def open_repo() -> Repo:
    try:
        return Repo(".")
    except NotARepository as e:
        fail(str(e))


failed = False   # a command's one error line went out (fail)


def fail(message: str, code: int = 1):
    """One line on stderr and the exit code: 1 the operation or check failed, 2 the command line is wrong
    (usage, a bad revision, a path that is not there or not in the repository)."""
    global failed
    failed = True
    if code == 1:   # a failed operation is worth a log; a usage error is not
        from ..util import logs
        logs.record(message)
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


def commit_or_fail(repo, rev: str) -> str:
    """The revision as given, once Git says it names a commit; else a usage error (exit 2)."""
    proc = repo.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        fail(f"bad revision {rev!r}", code=2)
    return rev


def range_or_fail(repo, range_: str) -> str:
    """A revision or range (A, A..B, A...B, ^A, A^!) as git rev-list takes it, once Git resolves every part
    of it; else a usage error (exit 2). --end-of-options: a leading '-' is a bad revision, not an option."""
    if repo.git("rev-parse", "--end-of-options", range_, "--", check=False).returncode != 0:
        fail(f"bad revision {range_!r}", code=2)
    return range_


def print_json(data):
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def remote_or_fail(repo, remote: str | None) -> str:
    from ..transfer.remote import default_remote
    remote = remote_name_or_fail(remote) or default_remote(repo)
    if remote is None:
        fail("no remote given and none configured")
    return remote


def remote_name_or_fail(remote: str | None) -> str | None:
    """A remote as given (name or URL): one starting with '-' would reach Git as an option (e.g.
    --upload-pack=COMMAND), so it is a usage error (exit 2)."""
    if remote is not None and (not remote or remote.startswith("-")):
        fail(f"bad remote {remote!r}", code=2)
    return remote
