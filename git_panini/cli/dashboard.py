"""`git panini dashboard`: a static page (one HTML file, no network needed) of how the repository's storage is doing."""

from __future__ import annotations

import contextlib
import json as json_mod
import os
import tempfile

import typer

from .common import JsonOption, commit_or_fail, console, fail, open_repo, print_json

DEFAULT_OUT = "panini-dashboard"


def dashboard(out: str = typer.Option(DEFAULT_OUT, "--out", metavar="DIR",
                                      help="Folder to write index.html and dashboard.json "
                                           "into (made if missing)."),
              rev: str = typer.Option("HEAD", "--rev", help="Whose tree's files to show."),
              verify: bool = typer.Option(True, "--verify/--no-verify", help="Verify every file of the tree "
                                          "bit-perfect (it reads every chunk; --no-verify: show 'not run')."),
              history: int = typer.Option(60, "--history", min=1, help="Moments of the notes' history drawn."),
              summary: str = typer.Option(None, "--summary", metavar="FILE",
                                          help="Also append a short Markdown summary to this "
                                               "file (e.g. \"$GITHUB_STEP_SUMMARY\")."),
              json: bool = JsonOption):
    """Write DIR/index.html (sizes per file type, codec chains, the queue and its history, worker throughput,
    the largest files, verify status) and DIR/dashboard.json (the same numbers)."""
    from ..report import dashboard as dashboard_mod
    from ..report.dashboard_html import render
    repo = open_repo()
    if not dashboard_mod.unborn(repo, rev):      # a repository with no commit yet shows its empty state
        commit_or_fail(repo, rev)
    try:
        data = dashboard_mod.build(repo, rev, verify=verify, history_points=history)
    except dashboard_mod.DashboardError as e:
        fail(str(e))
    page = render(data)
    if os.path.islink(out.rstrip("/") or out):
        # A checkout can hold `panini-dashboard` as a link to anywhere: never write through it.
        fail(f"{out} is a symbolic link: give --out a real folder")
    try:
        os.makedirs(out, exist_ok=True)
        _write(os.path.join(out, "dashboard.json"), json_mod.dumps(data, indent=2, sort_keys=True) + "\n")
        _write(os.path.join(out, "index.html"), page)
        if summary:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(dashboard_mod.summary_markdown(data))
    except OSError as e:
        fail(f"cannot write the dashboard: {e.filename or out}: {e.strerror or e}")
    index = os.path.abspath(os.path.join(out, "index.html"))
    if json:
        print_json({"index": index, "json": os.path.abspath(os.path.join(out, "dashboard.json")), **data})
    else:
        t = data["totals"]
        console.print(f"wrote {index}: {t['files']} file(s)" + (
            "" if data["verify"] is None else
            f", verify {'ok' if data['verify']['ok'] else 'FAILED'}"), markup=False, highlight=False)
    if data["verify"] is not None and not data["verify"]["ok"]:
        raise typer.Exit(1)


def _write(path: str, text: str):
    """Whole or not at all: a reader never sees half a page. The temporary file is a new one (mkstemp:
    O_EXCL, never a link that was there), and the rename replaces a link at `path`, never its target."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".panini-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def register(app: typer.Typer):
    app.command()(dashboard)
