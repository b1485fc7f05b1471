"""`git panini prune`: drop local data no ref, reflog, stash or the index references."""

from __future__ import annotations

import typer

from .common import JsonOption, console, human, open_repo, print_json


def prune(dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would be dropped."),
          cache_only: bool = typer.Option(False, "--cache-only",
                                          help="Drop only the read cache (refs/panini/cache); no walk of history."),
          json: bool = JsonOption):
    """Drop cleaned data that nothing references (a file added, then reset) and the read cache of what checkouts
    decoded; `git gc` frees their bytes."""
    from ..ops.prune import prune as prune_store
    result = prune_store(open_repo(), dry_run=dry_run, cache_only=cache_only)
    if json:
        print_json({"dry_run": dry_run, "manifests": result.manifests, "chunks": len(result.chunks),
                    "bytes": result.bytes, "kept": result.kept,
                    "cache": {"chunks": result.cache_chunks, "bytes": result.cache_bytes}})
        return
    verb = "would drop" if dry_run else "dropped"
    cache = f"the read cache, {result.cache_chunks} chunk(s), {human(result.cache_bytes)}"
    freed = not dry_run and (result.chunks or result.cache_chunks)
    if cache_only:
        line = f"{verb} {cache}"
    else:
        line = (f"{verb} {len(result.manifests)} unreferenced file(s), {len(result.chunks)} chunk(s), "
                f"{human(result.bytes)}; kept {result.kept}; {verb} {cache}")
    console.print(line + (" (git gc frees the bytes)" if freed else ""), markup=False)


def register(app: typer.Typer):
    app.command()(prune)
