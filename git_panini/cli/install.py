"""`git panini install / uninstall`: the filter in git config, the hooks in this repository."""

from __future__ import annotations

import os

import typer

from ..git.repo import run_git
from ..util.command import command, installed_script
from .common import console, fail, open_repo

def filter_config(panini: str) -> dict[str, str]:
    """The git config that makes Git call `panini` (this installation's command, util/command.py)."""
    return {
        "filter.panini.process": f"{panini} filter-process",
        "filter.panini.required": "true",
        "diff.panini.textconv": f"{panini} textconv",
        # A conflict on a tracked file keeps ours and says how to pick, never conflict-marker text in a pointer.
        "merge.panini.name": "git-panini binary merge",
        "merge.panini.driver": f"{panini} merge-driver %O %A %B %P",
    }
# Written by earlier versions: it made every diff "Binary files differ".
OLD_CONFIG = ("diff.panini.binary",)
# Git's delta search over chunk and pack blobs costs much and saves little (bench/delta_attributes.py:
# `git gc` 14x the CPU for 2% smaller packs). The patterns name only paths of the store's own trees:
# <2 hex>/<oid> fans under chunks/ (refs/panini/local), packs/ (recipes) or at the top (raw batches, pack
# data), so a user's own chunks/ or packs/ folder keeps Git's deltas.
_OID = "[0-9a-f][0-9a-f]/" + "[0-9a-f]" * 38 + "*"
STORE_ATTRIBUTES = ("# git-panini: store blobs never delta well (only its own <fan>/<oid> paths)\n"
                    + "".join(f"{prefix}{_OID} -delta\n" for prefix in ("chunks/", "packs/", "")))
# Written by earlier versions: they matched every chunks/ and packs/ folder of the user's too.
OLD_STORE_ATTRIBUTES = "# git-panini: chunk and pack blobs never delta well\nchunks/** -delta\npacks/** -delta\n"


def _scope(global_: bool) -> list[str]:
    return ["--global"] if global_ else ["--local"]


def install(global_: bool = typer.Option(False, "--global", help="Filter config for this user only, no hooks."),
            local: bool = typer.Option(False, "--local", help="This repository (the default).")):
    """Configure the panini filter and install the hooks."""
    from ..gitio import hook_files
    from . import manual
    if global_ and local:
        fail("choose one of --global and --local", code=2)
    repo = None if global_ else open_repo()
    manual.ensure_installed()
    installed = []
    if repo is not None:
        try:  # hooks first: a conflict there leaves the configuration untouched
            installed = hook_files.install(repo)
        except FileExistsError as e:
            fail(str(e))
    cwd = repo.work_tree or repo.git_dir if repo else None
    panini = command()
    if installed_script() is None:
        console.print("warning: no git-panini script beside this Python or on PATH: Git will look for "
                      "git-panini on PATH (pip install git-panini, then run git panini install again)",
                      markup=False, highlight=False)
    for key, value in filter_config(panini).items():
        run_git(["config", *_scope(global_), key, value], cwd=cwd)
    for key in OLD_CONFIG:
        run_git(["config", *_scope(global_), "--unset-all", key], cwd=cwd, check=False)
    if repo is None:
        console.print(f"git-panini filter configured for this user (~/.gitconfig): Git runs {panini}",
                      markup=False, highlight=False)
        return
    attributes = os.path.join(repo.common_dir, "info", "attributes")
    os.makedirs(os.path.dirname(attributes), exist_ok=True)
    existing = open(attributes).read() if os.path.exists(attributes) else ""
    if STORE_ATTRIBUTES not in existing:
        with open(attributes, "w") as f:
            f.write(existing.replace(OLD_STORE_ATTRIBUTES, "") + STORE_ATTRIBUTES)
    console.print(f"git-panini installed: filter in .git/config, {len(installed)} hooks; Git runs {panini}",
                  markup=False, highlight=False)
    _say_if_pointers_here(repo)


def _say_if_pointers_here(repo):
    """A clone made before the filter was installed holds pointer text where its files belong: say what
    turns them into the files (the filter only runs on what Git checks out from now on)."""
    from ..gitio.materialize import pointer_files
    from ..util.pathfilter import PathFilter
    if repo.work_tree is None or repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode:
        return
    left = pointer_files(repo, PathFilter())
    if left:
        console.print(f"{len(left)} file(s) in the working tree are their pointer text, not their data (checked "
                      "out without the filter): run git panini checkout", markup=False, highlight=False)


def uninstall(global_: bool = typer.Option(False, "--global", help="Remove the user-level filter config.")):
    """Remove the filter config and our hooks (chained hooks are put back)."""
    from ..gitio import hook_files
    repo = None if global_ else open_repo()
    cwd = (repo.work_tree or repo.git_dir) if repo else None
    run_git(["config", *_scope(global_), "--remove-section", "filter.panini"], cwd=cwd, check=False)
    for section in ("diff.panini", "merge.panini"):
        run_git(["config", *_scope(global_), "--remove-section", section], cwd=cwd, check=False)
    removed = hook_files.uninstall(repo) if repo else []
    console.print(f"git-panini uninstalled ({len(removed)} hooks removed)")


def register(app: typer.Typer):
    app.command()(install)
    app.command()(uninstall)
