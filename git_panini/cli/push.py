"""`git panini push [REMOTE]`: send the store and notes (merging with the remote's on a race)."""

from __future__ import annotations

import typer

from ..sync import SyncError, push as push_refs
from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail


def push(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
         json: bool = JsonOption):
    """Push refs/panini/store and refs/notes/panini."""
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    try:
        pushed = push_refs(repo, remote)
    except SyncError as e:
        fail(str(e))
    if json:
        print_json({"remote": remote, "pushed": pushed})
    else:
        console.print(f"pushed {len(pushed)} ref(s) to {remote}" if pushed else "nothing to push", markup=False)


def register(app: typer.Typer):
    app.command()(push)
