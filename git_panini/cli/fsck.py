"""`git panini fsck`: check the store's own consistency (every manifest's chunks reachable, packs readable)."""

from __future__ import annotations

import typer

from ..fsck import check_store
from .common import JsonOption, console, open_repo, print_json


def fsck(json: bool = JsonOption):
    """Check refs/panini/store and refs/notes/panini; exit 1 on any error."""
    report = check_store(open_repo())
    if json:
        print_json(report)
    else:
        for problem in report["errors"]:
            console.print(f"error: {problem}", markup=False, highlight=False)
        for problem in report["warnings"]:
            console.print(f"warning: {problem}", markup=False, highlight=False)
        c = report["counts"]
        console.print(f"{c['manifests']} manifests, {c['raw_chunks']} raw chunks, {c['packs']} packs, "
                      f"{c['notes']} notes: " + ("ok" if not report["errors"] else f"{len(report['errors'])} error(s)"),
                      markup=False)
    raise typer.Exit(1 if report["errors"] else 0)


def register(app: typer.Typer):
    app.command()(fsck)
