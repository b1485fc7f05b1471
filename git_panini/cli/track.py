"""`git panini track / untrack`: which paths go through the panini filter (.gitattributes)."""

from __future__ import annotations

import os

import typer

from .common import console, fail, open_repo

ATTRS = "filter=panini diff=panini -text"
LOCKABLE = "lockable"   # as git-lfs writes it: read-only in the working tree unless you hold its lock


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


def track(patterns: list[str] = typer.Argument(None, help='Patterns such as "*.psd" or "data/**".'),
          lockable: bool = typer.Option(False, "--lockable",
                                        help="Also mark them lockable: read-only unless you hold their lock.")):
    """Track patterns with git-panini (or list the tracked ones)."""
    path = _attributes_path()
    lines = _read(path)
    if not patterns:
        for line in lines:
            if "filter=panini" in line:
                fields = line.split()
                console.print(fields[0] + (" (lockable)" if LOCKABLE in fields[1:] else ""), markup=False,
                              highlight=False)
        return
    for pattern in patterns:
        plain, locked = f"{_quote(pattern)} {ATTRS}", f"{_quote(pattern)} {ATTRS} {LOCKABLE}"
        if locked in lines or (plain in lines and not lockable):
            console.print(f"already tracked: {pattern}", markup=False)
            continue
        if plain in lines:   # tracked before: now lockable too
            lines[lines.index(plain)] = locked
        else:
            lines.append(locked if lockable else plain)
        console.print(f"tracking {pattern}" + (" (lockable)" if lockable else ""), markup=False)
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
