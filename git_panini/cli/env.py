"""`git panini env`: what git-panini sees here: versions, config, refs, chunking."""

from __future__ import annotations

import shutil

import typer

from .. import __version__, hooks
from ..notes import Notes
from ..repo import run_git
from ..store import Store
from ..sync import default_remote
from .common import JsonOption, console, open_repo, print_json


def env(json: bool = JsonOption):
    """Show versions, filter configuration, hooks, store and notes tips."""
    repo = open_repo()
    store = Store(repo)
    info = {
        "git-panini": __version__,
        "git": run_git(["--version"]).stdout.decode().strip(),
        "git-panini on PATH": shutil.which("git-panini"),
        "repository": repo.work_tree or repo.git_dir,
        "object format": repo.algo,
        "filter.panini.process": repo.config_get("filter.panini.process"),
        "filter.panini.required": repo.config_get("filter.panini.required"),
        "hooks": {name: hooks._is_ours(f"{hooks.hooks_dir(repo)}/{name}") for name in hooks.HOOK_NAMES},
        "remote": default_remote(repo),
        "store": store.tip(),
        "notes": Notes(repo).tip(),
        "chunking": store.params().encode().strip(),
    }
    if json:
        print_json(info)
        return
    for key, value in info.items():
        console.print(f"{key}: {value}", markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(env)
