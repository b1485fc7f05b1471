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


def unlock(paths: list[str] = typer.Argument(..., help="Files to unlock (all or none); or lock refs "
                                             "(refs/panini/locks/...), or with --force the path a malformed lock records."),
           force: bool = typer.Option(False, "--force", help="Also another user's lock (admins), a file with uncommitted "
                                      "changes, or a malformed lock (see git panini locks)."),
           remote: str = RemoteOption, json: bool = JsonOption):
    """Release locks on the remote; lockable files become read-only here again."""
    from ..transfer import locks
    repo = open_repo()
    names, named = [], []
    for path in paths:
        if path.startswith(locks.LOCK_REFS):
            named.append(path)
            continue
        try:
            names.append(locks.repo_path(repo, path))
        except locks.LockError as e:
            if not force:
                fail(str(e), code=e.code)
            named.append(path)   # no path of this repository: maybe what a malformed lock records
    remote = remote_or_fail(repo, remote)
    try:
        released, removed = locks.unlock(repo, remote, names, force=force, named=named)
    except locks.LockError as e:
        fail(str(e), code=e.code)
    if json:
        me = locks.identity(repo)
        print_json({"remote": remote, "unlocked": [l.as_json(me) for l in released],
                    "removed_malformed": [b.as_json() for b in removed]})
        return
    for l in released:
        console.print(f"unlocked {l.path} on {remote}" + ("" if not force else f" (was {l.owner}'s)"),
                      markup=False, highlight=False)
    for b in removed:
        console.print(f"removed malformed lock {b.ref} on {remote}", markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(lock)
    app.command()(unlock)
