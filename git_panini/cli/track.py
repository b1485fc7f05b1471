"""`git panini track / untrack`: which paths go through the panini filter (.gitattributes)."""

from __future__ import annotations

import os

import typer

from ..ops import stranded
from ..ops.migrate.attributes import split_attribute_lines
from .common import JsonOption, console, fail, open_repo, print_json

ATTRS = "filter=panini diff=panini merge=panini -text"
LOCKABLE = "lockable"   # as git-lfs writes it: read-only in the working tree unless you hold its lock


def _quote(pattern: str) -> str:
    # One line per pattern, and .gitattributes patterns cannot hold raw blanks: git uses [[:space:]].
    if not pattern.strip() or "\n" in pattern or "\r" in pattern:
        fail(f"not a pattern: {pattern!r}", code=2)
    return pattern.replace(" ", "[[:space:]]").replace("\t", "[[:space:]]")


def _attributes_path() -> str:
    repo = open_repo()
    if repo.work_tree is None:
        fail("track needs a working tree")
    path = os.path.join(repo.work_tree, ".gitattributes")
    if os.path.islink(path):
        # Git reads no in-tree .gitattributes that is a link (since 2.32), and writing through one from a
        # cloned repository could rewrite any file the link names.
        fail(".gitattributes is a symbolic link, which git does not read: replace it with a file first")
    return path


def _read(path: str) -> list[str]:
    # surrogateescape: patterns are bytes to git; one that is not UTF-8 comes back as it was written.
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return split_attribute_lines(f.read())


def track(patterns: list[str] = typer.Argument(None, help='Patterns such as "*.psd" or "data/**".'),
          lockable: bool = typer.Option(False, "--lockable",
                                        help="Also mark them lockable: read-only unless you hold their lock."),
          json: bool = JsonOption):
    """Track patterns with git-panini (or list the tracked ones)."""
    path = _attributes_path()
    lines = _read(path)
    if json and patterns:
        fail("--json goes with listing the tracked patterns (no PATTERN)", code=2)
    if not patterns:
        tracked = [(fields[0], LOCKABLE in fields[1:]) for fields in (line.split() for line in lines)
                   if "filter=panini" in fields[1:]]
        if json:
            print_json({"patterns": [{"pattern": p, "lockable": l} for p, l in tracked]})
            return
        for pattern, is_lockable in tracked:
            console.print(pattern + (" (lockable)" if is_lockable else ""), markup=False, highlight=False)
        return
    from ..ops.migrate.lfs import drop_lfs_lines
    for pattern in patterns:
        quoted = _quote(pattern)
        # git-lfs's line for the same pattern goes (git lfs track replaces its own lines the same way): left
        # above ours it would be dead text that reads as if git-lfs still had the files.
        lines, lfs_extras = drop_lfs_lines(lines, {quoted})
        from_lfs = quoted in lfs_extras
        at = next((i for i, l in enumerate(lines) if l.split()[:1] == [quoted] and "filter=panini" in l.split()), None)
        was_lockable = LOCKABLE in (lines[at].split() if at is not None else lfs_extras.get(quoted, []))
        line = f"{quoted} {ATTRS}" + (f" {LOCKABLE}" if lockable or was_lockable else "")
        if at is not None and lines[at] == line and not from_lfs:
            console.print(f"already tracked: {pattern}", markup=False)
            continue
        if at is not None:   # tracked before: now lockable too, or written by a version without merge=panini
            lines[at] = line
        else:
            lines.append(line)
        if from_lfs:
            console.print(f"tracking {pattern}: replaced git-lfs's line for it in .gitattributes; stage the files "
                          "git-lfs stored with `git add --renormalize .`, or convert the whole history instead: "
                          "git checkout .gitattributes && git panini migrate import", markup=False, highlight=False)
        else:
            console.print(f"tracking {pattern}" + (" (lockable)" if lockable else ""), markup=False)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(lines) + "\n")


def untrack(patterns: list[str] = typer.Argument(..., help="Patterns given to `track` before."),
            renormalize: bool = typer.Option(False, "--renormalize",
                                             help="Stage the real bytes of the files that were stored, so the "
                                                  "next commit holds them (git add --renormalize).")):
    """Stop tracking patterns; says what becomes of the files already stored (see --renormalize)."""
    path = _attributes_path()
    quoted = {_quote(p) for p in patterns}
    lines = _read(path)
    kept = [l for l in lines if not (l.split() and l.split()[0] in quoted and "filter=panini" in l)]
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(kept) + ("\n" if kept else ""))
    console.print(f"untracked {len(lines) - len(kept)} pattern(s)", markup=False)
    repo = open_repo()
    found = stranded.in_index(repo)
    if not found:
        return
    if not renormalize:
        console.print(f"{len(found)} file(s) no longer tracked are stored as pointers: commits made so far keep "
                      "the pointers (checking them out still needs git-panini), the working tree files keep "
                      "their real bytes, and the next commit would store the pointer text as the file; run "
                      "`git panini untrack --renormalize` to stage the real bytes instead", markup=False,
                      highlight=False)
        return
    done, skipped = stranded.renormalize(repo, found)
    repo.git("add", "--", ".gitattributes")
    console.print(f"staged the real bytes of {len(done)} file(s) and .gitattributes: the next commit stores "
                  "them as plain files (commits made before keep their pointers)", markup=False, highlight=False)
    for name in skipped:
        console.print(f"not staged: {name} holds pointer text here, not its data (check it out with the "
                      "filter first)", markup=False, highlight=False)
    if skipped:
        raise typer.Exit(1)


def register(app: typer.Typer):
    app.command()(track)
    app.command()(untrack)
