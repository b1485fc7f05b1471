"""`git panini dispatch`: plan jobs from pending work, queue them under a lease, hand them to workers."""

from __future__ import annotations

import os
import time

import typer

from ..remote_work import dispatch as dispatch_mod
from ..remote_work import webhook as webhook_mod
from ..transfer.remote import default_remote
from .common import JsonOption, console, fail, human, open_repo, print_json, remote_name_or_fail


def dispatch(backend: str = typer.Option("local", "--backend", help="local: worker processes here; "
                                         "github: the worker workflow on GitHub Actions; webhook: POST the "
                                         "jobs to a `git panini serve` (--url)."),
             max_jobs: int = typer.Option(dispatch_mod.DEFAULT_MAX_JOBS, "--max-jobs", min=1,
                                          help="At most this many jobs (the rest waits for the next dispatch)."),
             job_bytes: str = typer.Option("256MiB", "--job-bytes", metavar="SIZE",
                                           help="About this much new data per job."),
             lease: int = typer.Option(dispatch_mod.DEFAULT_LEASE_SECONDS, "--lease", min=60,
                                       help="Seconds a queued job has to start before it is dispatched again."),
             remote: str = typer.Option(None, "--remote", help="Read and publish the notes here (default: "
                                        "the branch's remote)."),
             no_remote: bool = typer.Option(False, "--no-remote", help="This repository's notes only."),
             matrix: bool = typer.Option(False, "--matrix", help="github: write the jobs to $GITHUB_OUTPUT "
                                         "(jobs, count, matrix) for a matrix job instead of calling the API."),
             workflow: str = typer.Option("panini-worker.yml", "--workflow",
                                          help="github: the worker workflow to dispatch (file name or id)."),
             ref: str = typer.Option(None, "--ref", help="github: branch to run the worker workflow from "
                                     "(default: $GITHUB_REF_NAME, else the current branch)."),
             runner: str = typer.Option('["ubuntu-latest"]', "--runner",
                                        help="github: runner labels, JSON list or comma-separated."),
             device: str = typer.Option("cpu", "--device", help="auto|cpu|cuda, passed to the workers."),
             api_url: str = typer.Option(None, "--api-url", metavar="URL",
                                         help="Default: $GITHUB_API_URL, else api.github.com."),
             token: str = typer.Option(None, "--token", help="Default: $GITHUB_TOKEN (prefer the variable)."),
             repository: str = typer.Option(None, "--repository", help="owner/name; default: $GITHUB_REPOSITORY."),
             url: str = typer.Option(None, "--url", help="webhook: the server's URL (token from "
                                     "$PANINI_WEBHOOK_TOKEN, signature with $PANINI_WEBHOOK_SECRET if set)."),
             retries: int = typer.Option(webhook_mod.DEFAULT_RETRIES, "--retries", min=0, max=10,
                                         help="webhook: attempts after the first (exponential backoff)."),
             wait: bool = typer.Option(False, "--wait", help="webhook: poll the server until the jobs are done."),
             effort: int = typer.Option(None, "--effort", min=0, max=3, help="local: passed to the workers."),
             no_wait: bool = typer.Option(False, "--no-wait", help="local: start the workers and return."),
             dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; change nothing."),
             json: bool = JsonOption):
    """Queue pending work as jobs (bin-packed by bytes, small and recent first) and hand them to workers."""
    if backend not in ("local", "github", "webhook"):
        fail("--backend must be local, github or webhook", code=2)
    if (url is not None or wait) and backend != "webhook":
        fail("--url and --wait go with --backend webhook", code=2)
    if matrix and backend != "github":
        fail("--matrix goes with --backend github", code=2)
    if device not in ("auto", "cpu", "cuda"):
        fail("--device must be auto, cpu or cuda", code=2)
    try:
        size = dispatch_mod.parse_size(job_bytes)
        runner = dispatch_mod.normalize_runner(runner)
    except ValueError as e:
        fail(str(e), code=2)
    repo = open_repo()
    remote = None if no_remote else (remote_name_or_fail(remote) or default_remote(repo))
    client = None
    if backend == "github" and not matrix and not dry_run:
        from ..remote_work.github import Client, GitHubError
        try:   # before anything is queued: a missing token must not leave queued notes behind
            client = Client.from_env(repository, token, api_url)
        except GitHubError as e:
            fail(str(e))
    remote_url = None
    if backend == "webhook" and not dry_run:
        # Before anything is queued: a missing token or URL must not leave queued notes behind.
        client, remote_url = _webhook_client(repo, url, remote, retries)
    messages: list[str] = []
    dispatcher = dispatch_mod.Dispatcher(repo, remote, lease_seconds=lease, log=messages.append)
    try:
        jobs = dispatcher.queue(max_jobs, size, dry_run=dry_run)
    except dispatch_mod.DispatchError as e:
        fail(str(e))
    result = {"backend": backend, "dry_run": dry_run, "jobs": [j.as_dict() for j in jobs], "messages": messages}
    code, error = 0, None
    if dry_run or not jobs and not matrix:
        pass
    elif matrix:
        # Published first: the matrix jobs that read these outputs start only after this step.
        try:
            jobs = dispatcher.publish(jobs)
        except dispatch_mod.DispatchError as e:
            fail(str(e))
        from ..remote_work.github import write_output
        result["jobs"] = [j.as_dict() for j in jobs]
        result["outputs"] = dispatch_mod.matrix_outputs(jobs)
        result["github_output"] = write_output(result["outputs"])
    else:
        def hand_over():
            if backend == "local":
                result["workers"] = dispatch_mod.run_local(repo, jobs, remote, effort, wait=not no_wait,
                                                           dispatcher=dispatcher, log=messages.append)
            elif backend == "webhook":
                result["url"] = client.url
                dispatch_mod.dispatch_webhook(client, jobs, remote_url, dispatcher, messages.append)
            else:
                result.update(workflow=workflow, ref=ref or dispatch_mod.default_ref(repo))
                dispatch_mod.dispatch_github(client, jobs, workflow, result["ref"], runner, device, dispatcher,
                                             messages.append)
        error = dispatch_mod.hand_over_then_publish(dispatcher, jobs, hand_over)
        code = 1 if any(w["exit"] not in (0, None) for w in result.get("workers", [])) else 0
    if error:
        fail(error)
    if wait and jobs:
        try:
            done = client.wait([job.id for job in jobs], deadline=time.monotonic() + lease)
        except webhook_mod.WebhookError as e:
            fail(f"waiting for the jobs: {e}")
        result["done"] = [{"job": job, "state": record.get("state"), "result": record.get("result")}
                          for job, record in done.items()]
        code = 1 if any(d["state"] != "completed" for d in result["done"]) else 0
    if json:
        print_json(result)
        raise typer.Exit(code)
    _print(result)
    raise typer.Exit(code)


def _webhook_client(repo, url: str | None, remote: str | None, retries: int):
    """The client for --backend webhook and the URL the server fetches from (the remote's)."""
    if not url:
        fail("--backend webhook needs --url (the git panini serve to send the jobs to)", code=2)
    token = os.environ.get(webhook_mod.TOKEN_ENV)
    if not token:
        fail(f"no webhook token: set ${webhook_mod.TOKEN_ENV} (the token git panini serve expects)")
    if remote is None:
        fail("--backend webhook needs a remote: the server fetches the jobs' files from it", code=2)
    proc = repo.git("remote", "get-url", "--", remote, check=False)
    remote_url = webhook_mod.without_password(proc.stdout.decode().strip() if proc.returncode == 0 else remote)
    try:
        return webhook_mod.WebhookClient(url, token, os.environ.get(webhook_mod.SECRET_ENV), retries), remote_url
    except ValueError as e:
        fail(str(e), code=2)


def _print(result: dict):
    jobs = result["jobs"]
    verb = "would queue" if result["dry_run"] else "queued"
    if not jobs:
        console.print("nothing to dispatch: no pending work, expired lease or retryable failure", markup=False)
    else:
        files = sum(j["files"] for j in jobs)
        console.print(f"{verb} {len(jobs)} job(s), {files} file(s), {human(sum(j['bytes'] for j in jobs))}",
                      markup=False)
        for j in jobs:
            console.print(f"  {j['id']}  {j['files']} file(s)  {human(j['bytes'])}", markup=False)
    for message in result["messages"]:
        console.print(message, markup=False, highlight=False)
    for w in result.get("workers", []):
        state = "started" if w["exit"] is None else ("done" if w["exit"] == 0 else f"FAILED (exit {w['exit']})")
        console.print(f"  worker {w['job']}: {state}" + (f": {w['output'][0]}" if w["output"] else ""),
                      markup=False, highlight=False)
    if "outputs" in result:
        where = result["github_output"] or "stdout ($GITHUB_OUTPUT is not set)"
        if not result["github_output"]:
            for name, value in result["outputs"].items():
                console.print(f"{name}={value}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"matrix outputs written to {where}", markup=False)
    for d in result.get("done", []):
        r = d["result"] or {}
        detail = r.get("error") or (f"{r.get('files', 0)} file(s) worked, {r.get('failed', 0)} failed"
                                    if r else "")
        console.print(f"  job {d['job']}: {d['state']}" + (f": {detail}" if detail else ""), markup=False,
                      highlight=False)
    if "url" in result and not result["dry_run"]:
        console.print(f"delivered {len(jobs)} job(s) to {result['url']}", markup=False, highlight=False)
    if "workflow" in result:
        console.print(f"dispatched {len(jobs)} run(s) of {result['workflow']} on {result['ref']}", markup=False)


def register(app: typer.Typer):
    app.command()(dispatch)
