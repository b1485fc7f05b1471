"""`git panini fetch [REMOTE]`: get the remote's store and notes and merge them into ours."""

from __future__ import annotations

import typer

from ..store.notes import NOTES_REF
from ..store.shared import STORE_REF
from ..transfer.sync import SyncError
from ..transfer.sync import fetch as fetch_refs
from .common import JsonOption, console, fail, open_repo, print_json, remote_or_fail


def fetch(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
          json: bool = JsonOption):
    """Fetch and merge the remote's store metadata and notes (file data is fetched as checkouts need it)."""
    repo = open_repo()
    remote = remote_or_fail(repo, remote)
    try:
        state = fetch_refs(repo, remote)
    except SyncError as e:
        fail(str(e))
    merged = {ref: oid for ref, oid in ((STORE_REF, state.store or state.replace), (NOTES_REF, state.notes)) if oid}
    if json:
        print_json({"remote": remote, "merged": merged})
    else:
        console.print(f"fetched {len(merged)} ref(s) from {remote}" if merged else f"{remote} has no panini refs",
                      markup=False)


def register(app: typer.Typer):
    app.command()(fetch)
