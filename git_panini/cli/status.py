"""`git panini status`: per tracked file, its state in the work queue, sizes and ratio."""

from __future__ import annotations

import typer
from rich.table import Table

from .. import pointers
from ..notes import Notes
from .common import JsonOption, console, human, open_repo, print_json, tree_or_fail


def status(treeish: str = typer.Option("HEAD", "--rev", help="Commit whose files to show."),
           json: bool = JsonOption):
    """Show pending / queued / processing / completed / failed for each file in a commit."""
    repo = open_repo()
    tree_or_fail(repo, treeish)
    notes = Notes(repo).all()
    rows = []
    for found in pointers.in_tree(repo, treeish):
        p = found.pointer
        note = notes.get(p.manifest, {}) if p else {}
        stored = note.get("stored_bytes")
        rows.append({"path": found.path, "size": p.size if p else None, "manifest": p.manifest if p else None,
                     # No note: the file was never pushed (notes exist only for published files).
                     "status": note.get("status", "local") if p else "malformed",
                     "unique_bytes": note.get("unique_bytes"), "stored_bytes": stored,
                     "ratio": round(stored / p.size, 4) if p and stored is not None and p.size else None,
                     "error": note.get("error") if p else found.error})
    if json:
        print_json({"files": rows})
        return
    if not rows:
        console.print(f"no git-panini files in {treeish}", markup=False)
        return
    table = Table("file", "size", "new", "stored", "ratio", "status")
    for r in rows:
        table.add_row(r["path"], human(r["size"]), human(r["unique_bytes"]), human(r["stored_bytes"]),
                      f"{r['ratio']:.1%}" if r["ratio"] is not None else "-",
                      r["status"] + (f" ({r['error']})" if r["error"] else ""))
    console.print(table)


def register(app: typer.Typer):
    app.command()(status)
