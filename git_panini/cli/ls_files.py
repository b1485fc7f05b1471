"""`git panini ls-files`: the files a commit stores through git-panini."""

from __future__ import annotations

import typer

from ..format import pointer_scan as pointers
from .common import JsonOption, console, human, open_repo, print_json, tree_or_fail


def ls_files(treeish: str = typer.Argument("HEAD"), json: bool = JsonOption):
    """List pointer files with size, sha256 and manifest."""
    repo = open_repo()
    found = pointers.in_tree(repo, tree_or_fail(repo, treeish))
    if json:
        print_json({"files": [{"path": f.path, "size": f.pointer.size if f.pointer else None,
                               "sha256": f.pointer.sha256 if f.pointer else None,
                               "manifest": f.pointer.manifest if f.pointer else None,
                               "error": f.error} for f in found]})
        return
    for f in found:
        if f.pointer:
            console.print(f"{f.pointer.sha256[:12]} {human(f.pointer.size):>10}  {f.path}", markup=False,
                          highlight=False)
        else:
            console.print(f"{'malformed':>12} {'':>10}  {f.path} ({f.error})", markup=False, highlight=False)


def register(app: typer.Typer):
    app.command("ls-files")(ls_files)
