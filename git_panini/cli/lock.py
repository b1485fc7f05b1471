"""`git panini lock / unlock`: take and release locks kept in the remote itself (see git_panini/transfer/locks.py)."""

from __future__ import annotations

import typer

from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail

RemoteOption = typer.Option(None, "--remote", help="Remote holding the locks (default: the branch's remote).")


def _setup(paths: list[str], remote: str | None, must_exist: bool):
    from ..transfer import locks
    repo = open_repo()
    try:
        names = [locks.repo_path(repo, p) for p in paths]
        if must_exist:
            locks.known_paths(repo, names)
    except locks.LockError as e:
        fail(str(e), code=e.code)
    return repo, names, remote_or_fail(repo, remote)


def lock(paths: list[str] = typer.Argument(..., help="Files to lock (all or none)."),
         remote: str = RemoteOption, json: bool = JsonOption):
    """Lock files on the remote, so nobody else pushes changes to them; makes them writable here."""
    from ..transfer import locks
    repo, names, remote = _setup(paths, remote, must_exist=True)
    try:
        new, ours = locks.lock(repo, remote, names)
    except locks.LockError as e:
        fail(str(e), code=e.code)
    if json:
        me = locks.identity(repo)
        print_json({"remote": remote, "locked": [l.as_json(me) for l in new],
                    "already_locked": [l.as_json(me) for l in ours]})
        return
    for l in new:
        console.print(f"locked {l.path} on {remote}", markup=False, highlight=False)
    for l in ours:
        console.print(f"already locked by you: {l.path} (since {l.time})", markup=False, highlight=False)


def unlock(paths: list[str] = typer.Argument(..., help="Files to unlock (all or none)."),
           force: bool = typer.Option(False, "--force", help="Also another user's lock (admins), or a file with uncommitted changes."),
           remote: str = RemoteOption, json: bool = JsonOption):
    """Release locks on the remote; lockable files become read-only here again."""
    from ..transfer import locks
    repo, names, remote = _setup(paths, remote, must_exist=False)
    try:
        released = locks.unlock(repo, remote, names, force=force)
    except locks.LockError as e:
        fail(str(e), code=e.code)
    if json:
        me = locks.identity(repo)
        print_json({"remote": remote, "unlocked": [l.as_json(me) for l in released]})
        return
    for l in released:
        console.print(f"unlocked {l.path} on {remote}" + ("" if not force else f" (was {l.owner}'s)"),
                      markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(lock)
    app.command()(unlock)
