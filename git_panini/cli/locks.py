"""`git panini locks`: the locks a remote holds (see git_panini/transfer/locks.py)."""

from __future__ import annotations

import typer

from .common import JsonOption, console, err_console, fail, open_repo, print_json, remote_or_fail


def locks(remote: str = typer.Option(None, "--remote", help="Remote holding the locks (default: the branch's remote)."),
          json: bool = JsonOption):
    """List the remote's locks: path, owner, since when, from which host."""
    from ..transfer import locks as remote_locks
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    try:
        found, malformed = remote_locks.list_locks(repo, remote)
        me = remote_locks.identity(repo)
    except remote_locks.LockError as e:
        fail(str(e), code=e.code)
    if json:
        print_json({"remote": remote, "locks": [l.as_json(me) for l in found],
                    "malformed_refs": [b.ref for b in malformed], "malformed": [b.as_json() for b in malformed]})
        return
    for bad in malformed:   # one line each: they lock nothing and block no push
        err_console.print(f"git-panini: {bad.line()}", markup=False, highlight=False)
    if not found:
        console.print(f"no locks on {remote}", markup=False)
        return
    width = max(len(l.path) for l in found)
    for l in found:
        mark = " (you)" if l.owner == me else ""
        console.print(f"{l.path:<{width}}  {l.owner}{mark}  {l.time}  {l.host}", markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(locks)
