"""`git panini work`: recompress pending files on this machine (the embedded default worker)."""

from __future__ import annotations

import multiprocessing

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ..repo import Repo
from ..sync import default_remote
from ..worker import LEASE_SECONDS, Worker, threads_per_job
from .common import JsonOption, console, err_console, fail, open_repo, print_json


def _run_one(args) -> list[dict]:
    path, effort, remote, max_files, job, device, lease, threads = args
    worker = Worker(Repo(path), effort=effort, remote=remote, device=device, lease_seconds=lease, threads=threads)
    return [r.__dict__ for r in worker.run(max_files=max_files, job=job)]


def work(jobs: int = typer.Option(1, "-j", "--jobs", min=1,
                                  help="Worker processes on this machine. Together they use every usable "
                                       "core: each encodes segments in cores / jobs threads."),
         threads: int = typer.Option(0, "--threads", min=0,
                                     help="Encoding threads per process (0: the usable cores / jobs, as memory allows)."),
         effort: int = typer.Option(2, "--effort", min=0, max=3, help="0 fast ... 3 try everything."),
         remote: str = typer.Option(None, "--remote", help="Fetch work from / push results to this remote."),
         no_remote: bool = typer.Option(False, "--no-remote", help="Work on this repository only."),
         max_files: int = typer.Option(None, "--max-files", help="Stop after this many files (per process)."),
         job: str = typer.Option(None, "--job", help="Run exactly the files `git panini dispatch` queued as this job."),
         lease: int = typer.Option(LEASE_SECONDS, "--lease", min=1,
                                   help="Seconds a claim holds; after a crash others may retake the files then."),
         device: str = typer.Option("auto", "--device", help="auto|cpu|cuda: where to run the similarity search that orders small files."),
         json: bool = JsonOption):
    """Take pending files from the notes, pack their chunks, verify, and commit store + notes."""
    repo = open_repo()
    if device not in ("auto", "cpu", "cuda"):
        fail("--device must be auto, cpu or cuda")
    from ..similarity import resolve_device   # numpy: loaded only when working
    try:
        device = resolve_device(device)
    except RuntimeError as e:
        fail(str(e))
    remote = None if no_remote else (remote or default_remote(repo))
    # One process by default, in threads: processes sharing one repository and a remote race on their claims.
    threads = threads or threads_per_job(jobs)
    if jobs > 1:
        path = repo.work_tree or repo.git_dir
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            batches = pool.map(_run_one, [(path, effort, remote, max_files, job, device, lease, threads)] * jobs)
        results = [r for batch in batches for r in batch]
    else:
        with Progress("work", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err_console,
                      transient=True, disable=json) as progress:
            task = progress.add_task("work", total=None)
            worker = Worker(repo, effort=effort, remote=remote, device=device, lease_seconds=lease, threads=threads,
                            log=lambda m: progress.console.log(m, markup=False) if not json else None)
            results = [r.__dict__ for r in worker.run(max_files=max_files, job=job,
                                                      progress=lambda n: progress.advance(task, n))]
    failed = [r for r in results if not r["ok"]]
    if json:
        print_json({"files": results})
    else:
        raw = sum(r["packed_bytes"] for r in results)
        stored = sum(r["stored_bytes"] for r in results)
        console.print(f"{len(results)} file(s) worked, {len(failed)} failed; packed {raw} bytes into {stored}"
                      + (f" ({stored / raw:.1%})" if raw else ""), markup=False)
        for r in failed:
            console.print(f"failed {r['manifest']}: {r['error']}", markup=False, highlight=False)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer):
    app.command()(work)
