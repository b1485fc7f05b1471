"""`git panini push [REMOTE]`: publish what HEAD's unpushed commits need, as the pre-push hook does."""

from __future__ import annotations

import typer

from ..transfer.sync import SyncError
from ..transfer.sync import push as push_refs
from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail


def push(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
         json: bool = JsonOption):
    """Publish the data HEAD's commits need that the remote lacks (the store, notes and a raw batch)."""
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    try:
        pushed = push_refs(repo, remote)
    except SyncError as e:
        fail(str(e))
    if json:   # pushed: the refs this push updated (none when the remote was up to date)
        print_json({"remote": remote, "pushed": pushed})
    else:
        console.print(f"pushed {len(pushed)} ref(s) to {remote}" if pushed else "nothing to push", markup=False)


def register(app: typer.Typer):
    app.command()(push)
