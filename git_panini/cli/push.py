"""`git panini push [REMOTE]`: publish what HEAD's unpushed commits need, as the pre-push hook does; --repair
replaces the remote's store or notes ref where it is not a commit."""

from __future__ import annotations

import typer

from ..transfer.sync import SyncError, repair
from ..transfer.sync import push as push_refs
from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail


def push(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
         repair_damage: bool = typer.Option(False, "--repair", help="Replace the remote's refs/panini/store or "
                                            "refs/notes/panini where it is not a commit (a damaged remote): the new "
                                            "store lists every file its branches reference, as last fetched here."),
         json: bool = JsonOption):
    """Publish the data HEAD's commits need that the remote lacks (the store, notes and a raw batch)."""
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    try:
        pushed = repair(repo, remote) if repair_damage else push_refs(repo, remote)
    except SyncError as e:
        fail(str(e))
    if json:   # pushed: the refs this push updated (none when the remote was up to date); "": deleted
        print_json({"remote": remote, "pushed": pushed})
    elif repair_damage:
        console.print("\n".join(f"replaced {ref} on {remote}" if oid else f"deleted {ref} on {remote}"
                                for ref, oid in pushed.items() if ref.startswith(("refs/panini/store", "refs/notes/")))
                      or f"nothing to repair on {remote}", markup=False, highlight=False)
    else:
        console.print(f"pushed {len(pushed)} ref(s) to {remote}" if pushed else "nothing to push", markup=False)


def register(app: typer.Typer):
    app.command()(push)
