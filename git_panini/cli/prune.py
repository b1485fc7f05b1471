"""`git panini prune`: drop local data no ref, reflog, stash or the index references."""

from __future__ import annotations

import typer

from .common import JsonOption, console, human, open_repo, print_json


def prune(dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would be dropped."),
          json: bool = JsonOption):
    """Drop cleaned data that nothing references (a file added, then reset); `git gc` frees its bytes."""
    from ..ops.prune import prune as prune_store
    result = prune_store(open_repo(), dry_run=dry_run)
    if json:
        print_json({"dry_run": dry_run, "manifests": result.manifests, "chunks": len(result.chunks),
                    "bytes": result.bytes, "kept": result.kept})
        return
    verb = "would drop" if dry_run else "dropped"
    console.print(f"{verb} {len(result.manifests)} unreferenced file(s), {len(result.chunks)} chunk(s), "
                  f"{human(result.bytes)}; kept {result.kept}" + ("" if dry_run or not result.chunks
                                                                   else " (git gc frees the bytes)"), markup=False)


def register(app: typer.Typer):
    app.command()(prune)
