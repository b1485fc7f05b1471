"""`git panini pull` / `git panini checkout`: turn pointer files in the working tree into real files."""

from __future__ import annotations

import typer

from ..git.repo import GitError
from ..transfer.sync import SyncError, remote_refs
from ..util.pathfilter import PathFilter
from .common import console, fail, open_repo, remote_or_fail

IncludeOption = typer.Option(None, "--include", "-I", metavar="PATTERN",
                             help="Only paths matching these patterns (comma-separated).")
ExcludeOption = typer.Option(None, "--exclude", "-X", metavar="PATTERN",
                             help="Not paths matching these patterns (comma-separated).")


def pull(remote: str = typer.Argument(None, help="Remote name or URL (default: the branch's remote)."),
         include: list[str] = IncludeOption, exclude: list[str] = ExcludeOption):
    """Download the data of pointer files in the working tree (in one request) and check them out."""
    from ..gitio.materialize import check_out, fetch_data, pointer_files
    repo = open_repo()
    if repo.work_tree is None:
        fail("pull needs a working tree")
    remote = remote_or_fail(repo, remote)
    files = pointer_files(repo, PathFilter(include, exclude))
    try:
        asked = fetch_data(repo, files, remote)
        if not asked:   # nothing was missing, so the remote was not asked: a wrong one must still say so
            remote_refs(repo, remote, "refs/panini/")
        check_out(repo, files)
    except (SyncError, GitError) as e:
        fail(str(e))
    _report(repo, files, f"{len(files)} file(s) checked out ({asked} object(s) fetched from {remote})")


def checkout(include: list[str] = IncludeOption, exclude: list[str] = ExcludeOption):
    """Check out pointer files in the working tree as real files (fetching what is missing)."""
    from ..gitio.materialize import check_out, pointer_files
    repo = open_repo()
    if repo.work_tree is None:
        fail("checkout needs a working tree")
    files = pointer_files(repo, PathFilter(include, exclude))
    try:
        check_out(repo, files)
    except GitError as e:
        fail(str(e))
    _report(repo, files, f"{len(files)} file(s) checked out")


def _report(repo, files, done: str):
    """Say what was checked out; a file whose data still could not be had (the filter said why, and left
    it as its pointer text) is counted, and makes the command fail."""
    from ..gitio import unavailable
    left = unavailable.current(repo)
    still = [f for f in files if f.path in left]
    if still:
        console.print(f"{done}: {len(files) - len(still)} now real, {len(still)} still missing "
                      "(see git panini status)", markup=False)
        raise typer.Exit(1)
    console.print(done, markup=False)


def register(app: typer.Typer):
    app.command()(pull)
    app.command()(checkout)
