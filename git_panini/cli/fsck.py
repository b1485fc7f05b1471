"""`git panini fsck`: check the store by reachability (what `git gc --prune=now` keeps), packs readable."""

from __future__ import annotations

import typer

from .common import JsonOption, console, open_repo, print_json


def fsck(full: bool = typer.Option(False, "--full", help="Also decode every pack here and re-hash its chunks."),
         remote: str = typer.Option(None, "--remote", help="Also check this remote's store and notes refs as it "
                                    "holds them now: each a commit, no malformed store entry."),
         json: bool = JsonOption):
    """Check the store, the local store and the notes; exit 1 on any error."""
    from ..ops.fsck import check_store
    report = check_store(open_repo(), full=full, remote=remote)
    if json:
        print_json(report)
    else:
        for problem in report["errors"]:
            console.print(f"error: {problem}", markup=False, highlight=False)
        for problem in report["warnings"]:
            console.print(f"warning: {problem}", markup=False, highlight=False)
        c = report["counts"]
        here = (f", data of {c['head_files'] - c['head_files_not_here']} of {c['head_files']} HEAD file(s) here"
                if c.get("head_files") else "")
        console.print(f"{c['manifests']} published and {c['local_manifests']} local manifests, {c['packs']} packs, "
                      f"{c['notes']} notes{here}: "
                      + ("ok" if not report["errors"] else f"{len(report['errors'])} error(s)"), markup=False)
    raise typer.Exit(1 if report["errors"] else 0)


def register(app: typer.Typer):
    app.command()(fsck)
