"""`git panini init-ci`: write the thin GitHub Actions caller workflows into this repository."""

from __future__ import annotations

import os
import re
from importlib import resources

import typer

from .. import __version__
from .common import JsonOption, console, fail, open_repo, print_json

UPSTREAM = "git-panini/git-panini"          # where the reusable workflows live (override with --uses)
CALLERS = ("panini-dispatch.yml", "panini-worker.yml", "panini-pr.yml")
REUSABLE = {"DISPATCH": "dispatch.yml", "DISPATCH_API": "dispatch-api.yml", "WORKER": "worker.yml",
            "PR_CHECK": "pr-check.yml", "DISPATCH_WEBHOOK": "dispatch-webhook.yml"}
# --backend webhook: the dispatch workflow POSTs the jobs to a `git panini serve`; no worker workflow.
WEBHOOK_SECRETS = ("    secrets:\n      webhook-url: ${{ secrets.PANINI_WEBHOOK_URL }}\n"
                   "      webhook-token: ${{ secrets.PANINI_WEBHOOK_TOKEN }}\n"
                   "      webhook-secret: ${{ secrets.PANINI_WEBHOOK_SECRET }}\n")
VENDOR_PREFIX = "panini-lib-"               # vendored copies of the reusable workflows


def _yaml_str(value: str) -> str:
    """A YAML single-quoted scalar (nothing inside is special but the quote, doubled)."""
    return "'" + value.replace("'", "''") + "'"


def render(uses: str | None = None, vendor: bool = False, mode: str = "matrix", runner: str = '["ubuntu-latest"]',
           device: str = "cpu", spec: str | None = None, max_jobs: int = 4, job_bytes: str = "256MiB",
           cron: str = "17,47 * * * *", comment: bool = True, dashboard: bool = False,
           backend: str = "github") -> dict[str, str]:
    """{file name: text} of the workflows to write under .github/workflows/ (ValueError on bad input)."""
    from ..remote_work.dispatch import normalize_runner, parse_size
    if mode not in ("matrix", "dispatch"):
        raise ValueError("--mode must be matrix or dispatch")
    if backend not in ("github", "webhook"):
        raise ValueError("--backend must be github or webhook")
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError("--device must be cpu, cuda or auto")
    if not re.fullmatch(r"(\S+\s+){4}\S+", cron.strip()):
        raise ValueError(f"--cron needs five fields: {cron!r}")
    if max_jobs < 1:
        raise ValueError("--max-jobs must be at least 1")
    if not spec or "\n" in spec:
        raise ValueError("--spec must be one pip requirement")
    parse_size(job_bytes)
    runner = normalize_runner(runner)
    uses = uses or f"{UPSTREAM}@v{__version__}"
    m = re.fullmatch(r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@([A-Za-z0-9_./-]+)", uses)
    if not vendor and not m:
        raise ValueError(f"--uses must be OWNER/REPO@REF (a tag, branch or commit SHA), not {uses!r}")
    values = {"VERSION": __version__, "DEVICE": device, "MAX_JOBS": str(max_jobs),
              "JOB_BYTES": _yaml_str(job_bytes), "RUNNER": _yaml_str(runner), "CRON": _yaml_str(cron.strip()),
              "SPEC": _yaml_str(spec), "COMMENT": "true" if comment else "false",
              "DASHBOARD": "true" if dashboard else "false",
              "ACTIONS_PERMISSION": "      actions: write # create workflow_dispatch events for the worker workflow\n"
              if mode == "dispatch" else "",
              "DISPATCH_API_WITH": f"      runner: {_yaml_str(runner)}\n      device: {device}\n"
              if mode == "dispatch" and backend == "github" else "",
              "DISPATCH_SECRETS": WEBHOOK_SECRETS if backend == "webhook" else ""}
    for key, name in REUSABLE.items():
        values[f"USES_{key}"] = (f"./.github/workflows/{VENDOR_PREFIX}{name}" if vendor
                                 else f"{m.group(1)}/.github/workflows/{name}@{m.group(2)}")
    if backend == "webhook":
        values["USES_DISPATCH"], values["ACTIONS_PERMISSION"] = values["USES_DISPATCH_WEBHOOK"], ""
    elif mode == "dispatch":      # its own file: a called workflow's permissions count even where it is skipped
        values["USES_DISPATCH"] = values["USES_DISPATCH_API"]
    templates = resources.files("git_panini").joinpath("ci_templates")
    out = {}
    for name in CALLERS:
        if backend == "webhook" and name == "panini-worker.yml":
            continue
        text = templates.joinpath(name).read_text()
        if mode == "matrix" and backend == "github":   # the dispatch job hands the jobs to a worker matrix
            text = text.replace("@@MATRIX_ONLY_BEGIN@@", "").replace("@@MATRIX_ONLY_END@@\n", "")
        else:
            text = re.sub(r"@@MATRIX_ONLY_BEGIN@@.*@@MATRIX_ONLY_END@@\n", "", text, flags=re.S)
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        text = text.rstrip("\n") + "\n"
        if "@@" in text:
            raise RuntimeError(f"template {name} has an unfilled placeholder")
        out[name] = text
    if vendor:
        for name in REUSABLE.values():
            out[VENDOR_PREFIX + name] = templates.joinpath("reusable", name).read_text()
    return out


def init_ci(uses: str = typer.Option(None, "--uses", help=f"OWNER/REPO@REF holding the reusable workflows "
                                     f"(default {UPSTREAM}@v{__version__}); pin a commit SHA for safety."),
            vendor: bool = typer.Option(False, "--vendor", help="Also copy the reusable workflows into this "
                                        f"repository ({VENDOR_PREFIX}*.yml) and call those."),
            mode: str = typer.Option("matrix", "--mode", help="matrix: the dispatch workflow runs the workers "
                                     "as a matrix; dispatch: it starts panini-worker.yml through the API."),
            backend: str = typer.Option("github", "--backend", help="github: workers on Actions (--mode); "
                                        "webhook: the dispatch workflow POSTs the jobs to a `git panini serve` "
                                        "(secrets PANINI_WEBHOOK_URL, PANINI_WEBHOOK_TOKEN)."),
            runner: str = typer.Option('["ubuntu-latest"]', "--runner", help="Worker runner labels, JSON list or "
                                       "comma-separated (e.g. self-hosted,gpu)."),
            device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto for the workers."),
            spec: str = typer.Option(None, "--spec", help="What runners pip install (default: where this "
                                     "git-panini was installed from, as pip recorded it)."),
            max_jobs: int = typer.Option(4, "--max-jobs", help="Jobs per dispatch."),
            job_bytes: str = typer.Option("256MiB", "--job-bytes", metavar="SIZE", help="New data per job."),
            cron: str = typer.Option("17,47 * * * *", "--cron", help="When to look for expired leases."),
            comment: bool = typer.Option(True, "--comment/--no-comment", help="Keep a report comment on PRs."),
            dashboard: bool = typer.Option(False, "--dashboard", help="The dispatch workflow also publishes "
                                           "`git panini dashboard` as an artifact, linked from its job summary."),
            force: bool = typer.Option(False, "--force", help="Overwrite workflows that differ."),
            json: bool = JsonOption):
    """Write .github/workflows/panini-{dispatch,worker,pr}.yml calling git-panini's reusable workflows."""
    repo = open_repo()
    if repo.work_tree is None:
        fail("init-ci needs a working tree")
    if spec is None:
        from ..remote_work.distribution import install_spec
        spec, source = install_spec()
        if spec is None:
            fail(f"this git-panini was installed from {source}, which runners cannot reach: pass --spec "
                 "(e.g. 'git-panini @ git+https://github.com/OWNER/git-panini@COMMIT')")
    try:
        files = render(uses, vendor, mode, runner, device, spec, max_jobs, job_bytes, cron, comment,
                       dashboard=dashboard, backend=backend)
    except ValueError as e:
        fail(str(e), code=2)
    directory = os.path.join(repo.work_tree, ".github", "workflows")
    clashes = []
    for name, text in files.items():
        path = os.path.join(directory, name)
        if os.path.exists(path) and open(path, encoding="utf-8").read() != text and not force:
            clashes.append(name)
    if clashes:
        fail(f"{', '.join(clashes)} already exist(s) and differ(s); use --force to overwrite")
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)
        written.append(os.path.join(".github", "workflows", name))
    if json:
        print_json({"written": written, "mode": mode, "backend": backend})
        return
    for path in written:
        console.print(f"wrote {path}", markup=False)
    console.print("next: git add .github/workflows && git commit && git push; in the repository's settings, "
                  "Actions > General > Workflow permissions may stay read-only (each job asks for what it "
                  "needs); see git-panini's docs/github.md", markup=False)
    if backend == "webhook":
        console.print("then add the repository secrets PANINI_WEBHOOK_URL and PANINI_WEBHOOK_TOKEN (and "
                      "PANINI_WEBHOOK_SECRET if the server has one)", markup=False)


def register(app: typer.Typer):
    app.command("init-ci")(init_ci)
