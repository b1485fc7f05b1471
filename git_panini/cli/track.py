"""`git panini track / untrack`: which paths go through the panini filter (.gitattributes)."""

from __future__ import annotations

import os

import typer

from .common import console, fail, open_repo

ATTRS = "filter=panini diff=panini -text"


def _quote(pattern: str) -> str:
    # .gitattributes patterns cannot contain raw spaces: git uses [[:space:]] for them.
    return pattern.replace(" ", "[[:space:]]")


def _attributes_path() -> str:
    repo = open_repo()
    if repo.work_tree is None:
        fail("track needs a working tree")
    return os.path.join(repo.work_tree, ".gitattributes")


def _read(path: str) -> list[str]:
    return open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) else []


def track(patterns: list[str] = typer.Argument(None, help='Patterns such as "*.psd" or "data/**".')):
    """Track patterns with git-panini (or list the tracked ones)."""
    path = _attributes_path()
    lines = _read(path)
    if not patterns:
        for line in lines:
            if "filter=panini" in line:
                console.print(line.split()[0], markup=False, highlight=False)
        return
    for pattern in patterns:
        line = f"{_quote(pattern)} {ATTRS}"
        if line in lines:
            console.print(f"already tracked: {pattern}", markup=False)
            continue
        lines.append(line)
        console.print(f"tracking {pattern}", markup=False)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def untrack(patterns: list[str] = typer.Argument(..., help="Patterns given to `track` before.")):
    """Stop tracking patterns (files already stored stay pointers until re-added)."""
    path = _attributes_path()
    quoted = {_quote(p) for p in patterns}
    lines = _read(path)
    kept = [l for l in lines if not (l.split() and l.split()[0] in quoted and "filter=panini" in l)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + ("\n" if kept else ""))
    console.print(f"untracked {len(lines) - len(kept)} pattern(s)")


def register(app: typer.Typer):
    app.command()(track)
    app.command()(untrack)
