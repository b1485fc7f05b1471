"""`git panini status`: per tracked file, its state in the work queue, sizes and ratio."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from ..format import pointer_scan as pointers
from ..gitio import unavailable
from ..gitio.materialize import holds_pointer_text
from ..store.notes import Notes
from ..transfer.remote import default_remote
from ..transfer.remote_notes import NotesUnavailable, fetch_notes
from .common import JsonOption, console, err_console, human, open_repo, print_json, shown, tree_or_fail

FINAL = ("completed", "failed")
HEADER = ("file", "size", "new", "stored", "ratio", "status")


def status(treeish: str = typer.Option("HEAD", "--rev", metavar="REV", help="Commit whose files to show."),
           offline: bool = typer.Option(False, "--offline", help="Only the notes already here: do not fetch "
                                        "the remote's when some file has none or an unfinished one."),
           json: bool = JsonOption):
    """Show pending / queued / processing / completed / failed for each file in a commit, and missing for a
    file a checkout left as its pointer text because its data could not be had (with why). Of HEAD, a file
    whose working-tree copy is its pointer text, not its data (a clone made without the filter), says so.

    "new" is what the file added to the store when it was first published (its bytes no stored file had),
    written once in its note: it stays the same whoever cleans the same content again."""
    repo = open_repo()
    tree_or_fail(repo, treeish)
    found = pointers.in_tree(repo, treeish)
    notes = Notes(repo).all()
    remote = None if offline else default_remote(repo)
    if remote and any(f.pointer and notes.get(f.pointer.manifest, {}).get("status") not in FINAL for f in found):
        # A clone has no notes until a fetch, and ours may be behind the worker's: ask the remote's.
        try:
            if fetch_notes(repo, remote):
                notes = Notes(repo).all()
        except NotesUnavailable as e:
            err_console.print(f"git-panini: {e}; showing the notes here", markup=False, highlight=False)
    # Files a checkout left as their pointer text, their data not to be had (gitio.unavailable).
    left = unavailable.current(repo)
    # Of HEAD only: the working tree holds HEAD's files (another commit's would be compared with the wrong ones).
    here = repo.work_tree is not None and treeish == "HEAD"
    rows = []
    for f in found:
        p = f.pointer
        note = notes.get(p.manifest, {}) if p else {}
        stored = note.get("stored_bytes")
        missing = left.get(f.path) if p and left.get(f.path, (None,))[0] == p.encode() else None
        pointer_here = bool(here and p and not missing and holds_pointer_text(repo, f))
        rows.append({"path": f.path, "size": p.size if p else None, "manifest": p.manifest if p else None,
                     # No note: the file was never pushed (notes exist only for published files).
                     "status": "missing" if missing else note.get("status", "local") if p else "malformed",
                     "unique_bytes": note.get("unique_bytes"), "stored_bytes": stored,
                     "ratio": round(stored / p.size, 4) if p and stored is not None and p.size else None,
                     "error": missing[1] if missing else note.get("error") if p else f.error,
                     "pointer_in_working_tree": pointer_here})
    if json:
        print_json({"files": rows})
        return
    if not rows:
        console.print(f"no git-panini files in {treeish}", markup=False)
        return
    cells = [(shown(r["path"]), human(r["size"]), human(r["unique_bytes"]), human(r["stored_bytes"]),
              f"{r['ratio']:.1%}" if r["ratio"] is not None else "-",
              r["status"] + (f" ({shown(r['error'])})" if r["error"] else "")
              + (", pointer text in the working tree" if r["pointer_in_working_tree"] else "")) for r in rows]
    if not console.is_terminal:
        _print_plain(cells)
    else:
        table = Table(*HEADER)
        for row in cells:
            table.add_row(*row)
        console.print(table)
    pointers_here = sum(r["pointer_in_working_tree"] for r in rows)
    if pointers_here:
        err_console.print(f"git-panini: {pointers_here} file(s) in the working tree are their pointer text, not "
                          "their data (checked out without the filter): run git panini checkout", markup=False,
                          highlight=False)
    missing = sum(r["status"] == "missing" for r in rows)
    if missing:
        err_console.print(f"git-panini: {missing} file(s) left as their pointer text: their data could not be had "
                          "(git panini checkout tries again)", markup=False, highlight=False)


def _print_plain(cells):
    """Piped or redirected: aligned columns, every path and message whole (a table would cut them to 80
    columns)."""
    rows = [HEADER, *cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER) - 1)]
    for r in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1]
        sys.stdout.write(line + "\n")


def register(app: typer.Typer):
    app.command()(status)
