"""`git panini push [REMOTE] [--repair]`: publish what HEAD's unpushed commits need, as the pre-push hook does;
--repair pushes back whatever the remote lost that this clone holds."""

from __future__ import annotations

import typer

from ..transfer.sync import SyncError
from ..transfer.sync import push as push_refs
from ..transfer.sync import repair as repair_remote
from .common import JsonOption, console, err_console, fail, open_repo, print_json, remote_or_fail


def push(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
         repair: bool = typer.Option(False, "--repair", help="Push back every file of this clone's branches, "
                                     "tags and remote-tracking refs whose data the remote does not hold."),
         json: bool = JsonOption):
    """Publish the data HEAD's commits need that the remote lacks (the store, notes and a raw batch)."""
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    skipped, replaced = {}, []
    try:
        if repair:
            pushed, skipped, replaced = repair_remote(repo, remote)
        else:
            pushed = push_refs(repo, remote)
    except SyncError as e:
        fail(str(e))
    if json:   # pushed: the refs this push updated (none when the remote was up to date)
        print_json({"remote": remote, "pushed": pushed} | ({"not_here": skipped} if repair else {}))
    else:
        for path, why in sorted(skipped.items()):
            err_console.print(f"not here: {path}: {why}", markup=False, highlight=False)
        for ref in replaced:   # it was not a commit there
            console.print(f"replaced {ref} on {remote}", markup=False, highlight=False)
        console.print(f"pushed {len(pushed)} ref(s) to {remote}" if pushed else "nothing to push", markup=False)
    if skipped:
        raise typer.Exit(1)


def register(app: typer.Typer):
    app.command()(push)
