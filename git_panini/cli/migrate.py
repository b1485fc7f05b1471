"""`git panini migrate import|export|info`: bring a history into git-panini, or back out (as `git lfs migrate`)."""

from __future__ import annotations

import sys
from enum import Enum

import typer

from ..util.pathfilter import split_patterns
from .common import JsonOption, console, err_console, fail, human, open_repo, print_json


class Mode(str, Enum):
    import_ = "import"
    export = "export"
    info = "info"


def _progress(verb: str):
    """A per-commit callback factory drawing a bar on stderr (TTY only)."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    bar = Progress(f"migrate {verb}", BarColumn(), MofNCompleteColumn(), "commits", TimeElapsedColumn(),
                   console=err_console, transient=True)

    def start(total: int):
        task = bar.add_task(verb, total=total)
        bar.start()
        return lambda: bar.advance(task)
    start.bar = bar
    return start


def migrate_command(
        mode: Mode = typer.Argument(..., metavar="import|export|info",
                                    help="import: files become pointers; export: pointers become files; "
                                         "info: what import would convert."),
        refs: list[str] = typer.Argument(None, metavar="REF",
                                         help="Branches and tags to rewrite (default: the current branch)."),
        include: list[str] = typer.Option(None, "--include", "-I", metavar="PATTERN",
                                          help="gitattributes patterns to convert, repeatable or comma-separated "
                                               "(import default: those HEAD tracks with git-panini and every one "
                                               "git-lfs tracks in the history; export: every pointer)."),
        exclude: list[str] = typer.Option(None, "--exclude", "-X", metavar="PATTERN",
                                          help="Patterns left as they are, repeatable or comma-separated."),
        from_lfs: bool = typer.Option(False, "--from-lfs",
                                      help="import: also every pattern git-lfs tracks in the history, their "
                                           "objects read from .git/lfs/objects (git lfs fetch --all when missing)."),
        everything: bool = typer.Option(False, "--everything", help="Every local branch and tag."),
        top: int = typer.Option(10, "--top", min=1, help="info: rows shown."),
        json: bool = JsonOption):
    """Rewrite history: matching files become pointers (import) or plain files (export); info only counts."""
    from ..ops.migrate import MigrateError, info, migrate
    repo = open_repo()
    include, exclude = split_patterns(include), split_patterns(exclude)
    if from_lfs and mode is not Mode.import_:
        fail("--from-lfs goes with migrate import", code=2)
    try:
        if mode is Mode.info:
            rows = info(repo, include, exclude, refs or [], everything)
            _print_info(rows[:top] if not include else rows, json)
            return
        start = None if json else _progress(mode.value)
        try:
            result = migrate(repo, mode.value, include, exclude, refs or [], everything, start, from_lfs)
        finally:
            if start is not None:
                start.bar.stop()
    except MigrateError as e:
        fail(str(e), code=2 if e.usage else 1)
    counts = result.counts
    if json:
        print_json({"refs": result.refs, "changed": result.changed, "backup": result.backup,
                    "commits": counts.commits, "converted_blobs": counts.converted, "converted_bytes": counts.bytes,
                    "checked_out": result.checked_out, "patterns": result.patterns,
                    "lfs_fetched": result.lfs_fetched})
        return
    if result.lfs_fetched:
        console.print("git-lfs objects missing here were fetched first (git lfs fetch --all)", markup=False)
    if mode is Mode.import_ and result.patterns != include:
        console.print(f"patterns: {' '.join(result.patterns)}", markup=False, highlight=False)
    what = "into pointers" if mode is Mode.import_ else "back into files"
    console.print(f"migrate {mode.value}: {counts.commits} commit(s) read, {counts.converted} blob(s) "
                  f"({human(counts.bytes)}) turned {what}, {len(result.changed)} ref(s) rewritten",
                  markup=False, highlight=False)
    if result.backup:
        console.print(f"old tips kept under {result.backup} (undo: git update-ref <ref> {result.backup}<ref>)",
                      markup=False)


def _print_info(rows, json: bool):
    if json:
        print_json({"patterns": [r.as_dict() for r in rows]})
        return
    if not rows:
        console.print("nothing to convert", markup=False, highlight=False)
        return
    width = max(len(r.pattern) for r in rows)
    for r in rows:
        lfs = f", {r.lfs} git-lfs pointer(s)" if r.lfs else ""
        console.print(f"{r.pattern:<{width}}  {human(r.bytes):>10}  {r.blobs} blob(s) in {len(r.paths)} path(s){lfs}",
                      markup=False, highlight=False)


def register(app: typer.Typer):
    app.command(name="migrate")(migrate_command)
