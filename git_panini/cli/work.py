"""`git panini work`: recompress pending files on this machine (the embedded default worker)."""

from __future__ import annotations

import multiprocessing
import os

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from .. import pointers
from ..dispatch import JOB_ID
from ..lease import CLOCK_SKEW_SECONDS, held_here
from ..repo import Repo
from ..sync import SyncError, default_remote
from ..worker import LEASE_SECONDS, Worker, threads_per_job
from .common import JsonOption, console, err_console, fail, human, open_repo, print_json, remote_name_or_fail


def _run_one(args) -> list[dict]:
    path, effort, remote, max_files, job, device, lease, skew, threads = args
    worker = Worker(Repo(path), effort=effort, remote=remote, device=device, lease_seconds=lease, skew=skew,
                    threads=threads)
    return [r.__dict__ for r in worker.run(max_files=max_files, job=job)]


def _skew(repo) -> float:
    """panini.leaseSkew: seconds another machine's clock may be ahead of ours."""
    value = repo.config_get("panini.leaseSkew")
    if value is None:
        return CLOCK_SKEW_SECONDS
    try:
        skew = float(value)
    except ValueError:
        skew = -1.0
    if not 0 <= skew < 1e6:
        fail(f"panini.leaseSkew must be a number of seconds, not {value!r}")
    return skew


def _named(repo, paths: list[str]) -> dict[str, str]:
    """{manifest: path} of the git-panini files of HEAD at or under these paths (relative to here)."""
    found = [f for f in pointers.in_tree(repo, "HEAD") if f.pointer]
    root = repo.work_tree or os.getcwd()
    named: dict[str, str] = {}
    for given in paths:
        rel = os.path.relpath(os.path.abspath(given), root).replace(os.sep, "/")
        hits = {f.pointer.manifest: f.path for f in found
                if rel == "." or f.path == rel or f.path.startswith(rel.rstrip("/") + "/")}
        if rel == ".." or rel.startswith("../"):
            fail(f"{given}: outside the repository", code=2)
        if not hits:
            fail(f"{given}: no git-panini file at this path in HEAD", code=2)
        named |= hits
    return named


def _release(repo, paths: list[str], remote: str | None, force: bool, json: bool):
    """`git panini work --release`: hand back leases (this machine's dead processes', or with --force any)."""
    named = _named(repo, paths) if paths else None
    worker = Worker(repo, remote=remote, skew=_skew(repo))
    try:
        done, kept = worker.release(list(named) if named is not None else None, force=force)
    except SyncError as e:
        fail(str(e))
    where = {f.pointer.manifest: f.path for f in pointers.in_tree(repo, "HEAD") if f.pointer} | (named or {})
    if json:
        print_json({"released": [{"manifest": m, "path": where.get(m), "worker": n.get("worker"),
                                  "status": n.get("prior") or "pending"} for m, n in sorted(done.items())],
                    "kept": [{"manifest": m, "path": where.get(m), "worker": n.get("worker")}
                             for m, n in sorted(kept.items())]})
        return
    for m, n in sorted(done.items(), key=lambda item: where.get(item[0], item[0])):
        console.print(f"released {where.get(m, m)} (held by {n.get('worker')}; now {n.get('prior') or 'pending'})",
                      markup=False, highlight=False)
    for m, n in sorted(kept.items(), key=lambda item: where.get(item[0], item[0])):
        holder = "a running process of this machine" if held_here(n) else "another machine"
        console.print(f"kept {where.get(m, m)}: held by {n.get('worker')} ({holder}; --force releases it)",
                      markup=False, highlight=False)
    console.print(f"{len(done)} lease(s) released", markup=False)


def work(paths: list[str] = typer.Argument(None, metavar="[PATH]...", help="With --release: only these files."),
         release: bool = typer.Option(False, "--release", help="Hand back leases left by workers of this machine "
                                      "that are gone (the files become claimable again at once), and stop."),
         force: bool = typer.Option(False, "--force", help="With --release: any lease, also a live or another machine's."),
         jobs: int = typer.Option(1, "-j", "--jobs", min=1,
                                  help="Worker processes on this machine. Together they use every usable "
                                       "core: each encodes segments in cores / jobs threads."),
         threads: int = typer.Option(0, "--threads", min=0,
                                     help="Encoding threads per process (0: the usable cores / jobs, as memory allows)."),
         effort: int = typer.Option(2, "--effort", min=0, max=3, help="0 fast ... 3 try everything."),
         remote: str = typer.Option(None, "--remote", help="Fetch work from / push results to this remote."),
         no_remote: bool = typer.Option(False, "--no-remote", help="Work on this repository only."),
         max_files: int = typer.Option(None, "--max-files", min=1, help="Stop after this many files (per process)."),
         job: str = typer.Option(None, "--job", help="Run exactly the files `git panini dispatch` queued as this job."),
         lease: int = typer.Option(LEASE_SECONDS, "--lease", min=1,
                                   help="Seconds a claim holds; after a crash others may retake the files then."),
         device: str = typer.Option("auto", "--device", help="auto|cpu|cuda: where to run the similarity search that orders small files."),
         json: bool = JsonOption):
    """Take pending files from the notes, pack their chunks, verify, and commit store + notes."""
    repo = open_repo()
    if (paths or force) and not release:
        fail("PATH arguments and --force go with --release", code=2)
    if device not in ("auto", "cpu", "cuda"):
        fail("--device must be auto, cpu or cuda", code=2)
    if job is not None and not JOB_ID.fullmatch(job):
        fail(f"--job {job!r} is not a job id (git panini dispatch prints them: 20261129T103000Z-1a2b3c-0)", code=2)
    remote = None if no_remote else (remote_name_or_fail(remote) or default_remote(repo))
    if release:
        _release(repo, paths or [], remote, force, json)
        return
    skew = _skew(repo)
    from ..similarity import resolve_device   # numpy: loaded only when working
    try:
        device = resolve_device(device)
    except RuntimeError as e:
        fail(str(e))
    # One process by default, in threads: processes sharing one repository and a remote race on their claims.
    threads = threads or threads_per_job(jobs)
    if jobs > 1:
        path = repo.work_tree or repo.git_dir
        try:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                batches = pool.map(_run_one, [(path, effort, remote, max_files, job, device, lease, skew, threads)]
                                   * jobs)
        except KeyboardInterrupt:
            fail("interrupted; each worker process handed its files back", code=130)
        results = [r for batch in batches for r in batch]
    else:
        with Progress("work", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err_console,
                      transient=True, disable=json or not err_console.is_terminal) as progress:
            task = progress.add_task("work", total=None)
            worker = Worker(repo, effort=effort, remote=remote, device=device, lease_seconds=lease, skew=skew,
                            threads=threads,
                            log=lambda m: progress.console.print(m, markup=False, highlight=False)
                            if not json else None)
            try:
                results = [r.__dict__ for r in worker.run(max_files=max_files, job=job,
                                                          progress=lambda n: progress.advance(task, n))]
            except KeyboardInterrupt:
                # The leases went back (Worker.run): those files are claimable at once, no attempt counted.
                fail(f"interrupted; {len(worker.released)} file(s) handed back", code=130)
    failed = [r for r in results if not r["ok"]]
    if json:
        print_json({"files": results})
    else:
        raw = sum(r["packed_bytes"] for r in results)
        stored = sum(r["stored_bytes"] for r in results)
        console.print(f"{len(results)} file(s) worked, {len(failed)} failed; packed {human(raw)} into "
                      f"{human(stored)}" + (f" ({stored / raw:.1%})" if raw else ""), markup=False)
        where = {f.pointer.manifest: f.path for f in pointers.in_tree(repo, "HEAD") if f.pointer} if failed else {}
        for r in failed:
            console.print(f"failed {where.get(r['manifest'], 'manifest ' + r['manifest'])}: {r['error']}",
                          markup=False, highlight=False)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer):
    app.command()(work)
