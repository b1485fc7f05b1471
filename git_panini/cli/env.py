"""`git panini env`: what git-panini sees here: versions, config, refs, chunking."""

from __future__ import annotations

import shutil

import typer

from .. import __version__
from ..git.repo import run_git
from ..store.notes import Notes
from ..store.shared import Store
from ..transfer.remote import default_remote
from .common import JsonOption, console, human, open_repo, print_json


def env(json: bool = JsonOption):
    """Show versions, filter configuration, hooks, store and notes tips."""
    from ..gitio import hook_files
    repo = open_repo()
    store = Store(repo)
    params = store.params()
    hook_state = {name: hook_files.is_ours(f"{hook_files.hooks_dir(repo)}/{name}") for name in hook_files.HOOK_NAMES}
    info = {
        "version": __version__,
        "git": run_git(["--version"]).stdout.decode().strip().removeprefix("git version "),
        "executable": shutil.which("git-panini"),
        "repository": repo.work_tree or repo.git_dir,
        "object_format": repo.algo,
        "filter_process": repo.config_get("filter.panini.process"),
        "filter_required": repo.config_get("filter.panini.required") == "true",
        "diff_textconv": repo.config_get("diff.panini.textconv"),
        "hooks": hook_state,
        "remote": default_remote(repo),
        "store": store.tip(),
        "notes": Notes(repo).tip(),
        "chunking": {"chunker": "fastcdc-2020", "min_size": params.min_size, "avg_size": params.avg_size,
                     "max_size": params.max_size},
    }
    if json:
        print_json(info)
        return
    missing = [name for name, ours in hook_state.items() if not ours]
    lines = [
        ("git-panini", f"{info['version']} ({info['executable'] or 'not on PATH'})"),
        ("git", info["git"]),
        ("repository", f"{info['repository']} ({info['object_format']})"),
        ("filter", f"{info['filter_process'] or 'not configured: run git panini install'}"
                   f"{', required' if info['filter_required'] else ''}"),
        ("diff driver", info["diff_textconv"] or "not configured: run git panini install"),
        ("hooks", "all installed" if not missing else f"missing {', '.join(missing)}: run git panini install"),
        ("remote", info["remote"] or "none"),
        ("store", info["store"] or "empty"),
        ("notes", info["notes"] or "none"),
        ("chunking", f"FastCDC min {human(params.min_size)}, average {human(params.avg_size)}, "
                     f"max {human(params.max_size)}"),
    ]
    for key, value in lines:
        console.print(f"{key + ':':13}{value}", markup=False, highlight=False)


def register(app: typer.Typer):
    app.command()(env)
