"""`git panini verify [RANGE|--all]`: prove every file reconstructs bit-perfectly (the PR gate)."""

from __future__ import annotations

import typer
from rich.progress import Progress

from ..format import pointer_scan as pointers
from ..util.units import progress_columns
from .common import JsonOption, console, err_console, fail, open_repo, print_json, range_or_fail


def verify(range_: str = typer.Argument(None, metavar="[RANGE]", help="e.g. origin/main..HEAD; default: HEAD's tree"),
           all_: bool = typer.Option(False, "--all", help="Every pointer in the history of every ref."),
           json: bool = JsonOption):
    """Check manifest, every chunk's hash, and every file's sha256 and size."""
    from ..ops.verify import mark_stranded, verify_files
    if all_ and range_:
        fail("give a RANGE or --all, not both", code=2)
    repo = open_repo()
    if all_:
        found = pointers.in_revs(repo, ["--exclude=refs/panini/*", "--exclude=refs/notes/*", "--all"])
    elif range_:
        found = pointers.in_revs(repo, [range_or_fail(repo, range_)])
    else:
        found = pointers.in_tree(repo, "HEAD")
    total = sum(f.pointer.size for f in found if f.pointer)
    with Progress("verify", *progress_columns(), console=err_console,
                  transient=True, disable=json or total < (64 << 20)) as progress:
        task = progress.add_task("verify", total=total)
        results = verify_files(repo, found, repo.work_tree, lambda n: progress.advance(task, n),
                               warn=lambda m: err_console.print(f"git-panini: {m}", markup=False, highlight=False))
    results = mark_stranded(repo, results, _checked_out_commits(repo, range_))
    bad = [r for r in results if not r.ok]
    if json:
        print_json({"ok": not bad, "files": [r.as_dict() for r in results]})
    else:
        for r in bad:
            console.print(f"FAIL {r.path}: {r.error}", markup=False, highlight=False)
        console.print(f"{len(results) - len(bad)} of {len(results)} file(s) verified bit-perfect"
                      + (f", {len(bad)} FAILED" if bad else ""), markup=False)
    raise typer.Exit(1 if bad else 0)


def _checked_out_commits(repo, range_: str | None) -> list[str]:
    """The commits whose checkout must bring the files back: the range's tips, else HEAD (if born)."""
    proc = repo.git("rev-parse", "--revs-only", *([range_] if range_ else ["HEAD"]), check=False)
    return [l for l in proc.stdout.decode().split() if not l.startswith("^")] if proc.returncode == 0 else []


def register(app: typer.Typer):
    app.command()(verify)
