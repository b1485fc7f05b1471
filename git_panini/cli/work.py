"""`git panini work`: recompress pending files on this machine (the embedded default worker)."""

from __future__ import annotations

import json as jsonlib
import math
import multiprocessing
import os
import sys

import typer
from rich.progress import Progress

from ..format import pointer_scan as pointers
from ..git.repo import Repo
from ..remote_work.dispatch import JOB_ID
from ..transfer.remote import SyncError, default_remote
from ..util import logs
from ..util.units import progress_columns
from ..work.claims import LEASE_SECONDS, Claims
from ..work.lease import CLOCK_SKEW_SECONDS, held_here
from ..work.threads import threads_per_job
from ..work.watch import Round, Watcher
from ..work.worker import Worker
from .common import JsonOption, console, err_console, fail, human, open_repo, print_json, remote_name_or_fail


def _run_one(args) -> list[dict]:
    path, effort, remote, max_files, job, device, lease, skew, threads = args
    worker = Worker(Repo(path), effort=effort, remote=remote, device=device, lease_seconds=lease, skew=skew,
                    threads=threads)
    return [r.__dict__ for r in worker.run(max_files=max_files, job=job)]


def _pending_bytes(repo, job: str | None, skew: float) -> int:
    """The bytes of the files this run may claim, from the notes as they are here now (the bar's total; a
    remote's notes, fetched by the claim, may hold a little more or less)."""
    from datetime import datetime, timezone

    from ..store.notes import Notes
    from ..work.claims import claimable
    at = datetime.now(timezone.utc)
    return sum(n.get("bytes") or 0 for n in Notes(repo).all().values() if claimable(n, at, job=job, skew=skew))


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
    claims = Claims(repo, remote=remote, skew=_skew(repo))
    try:
        done, kept = claims.release(list(named) if named is not None else None, force=force)
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


WATCH_INTERVAL = 30.0


def _json_line(data: dict):
    """One JSON object per line, flushed: a notebook or a pipe reads each round as it ends."""
    sys.stdout.write(jsonlib.dumps(data, sort_keys=True) + "\n")
    sys.stdout.flush()


def _watch(make_worker, interval: float, max_idle: int | None, json: bool):
    """`git panini work --watch`: one line (or JSON object) per round, a summary at the end; exit 0 when
    stopped by SIGTERM or after --max-idle idle rounds (1 if a file failed), 130 on Ctrl-C."""
    def report(done: Round):
        if json:
            _json_line(done.as_dict())
        elif done.error:
            err_console.print(f"git-panini: round {done.number} failed: {done.error}; next try in {interval:g} s",
                              markup=False, highlight=False)
        elif done.files:
            ratio = f" ({done.stored_bytes / done.packed_bytes:.1%})" if done.packed_bytes else ""
            console.print(f"round {done.number}: {done.files} file(s) worked, {done.failed} failed; "
                          f"{human(done.packed_bytes)} -> {human(done.stored_bytes)}{ratio} in {done.seconds:.1f} s, "
                          f"{human(done.bytes_per_second)}/s", markup=False, highlight=False)
        else:
            then = "stopping" if watcher.stopping else f"next round in {interval:g} s"
            console.print(f"round {done.number}: nothing pending; {then}", markup=False, highlight=False)

    watcher = Watcher(make_worker, interval, max_idle, report)
    totals = watcher.run()
    if json:
        _json_line({"summary": totals.as_dict(), "handed_back": watcher.handed_back})
    else:
        ratio = f" ({totals.stored_bytes / totals.packed_bytes:.1%})" if totals.packed_bytes else ""
        stopped = {"idle": f"{max_idle} idle round(s)", "SIGTERM": "SIGTERM", "SIGINT": "interrupted"}[totals.stopped]
        console.print(f"watched {totals.rounds} round(s) ({totals.failed_rounds} failed), stopped by {stopped}: "
                      f"{totals.files} file(s) worked, {totals.failed} failed; packed {human(totals.packed_bytes)} "
                      f"into {human(totals.stored_bytes)}{ratio}; throughput {human(totals.bytes_per_second)}/s"
                      + (f"; {watcher.handed_back} file(s) handed back" if watcher.handed_back else ""),
                      markup=False, highlight=False)
    if totals.stopped == "SIGINT":
        raise typer.Exit(130)
    raise typer.Exit(1 if totals.stopped == "idle" and totals.failed else 0)


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
         watch: bool = typer.Option(False, "--watch", help="Keep working: round after round fetch, claim, work, "
                                    "push, then sleep --interval (no public URL needed). One line per round; a "
                                    "failed round is retried. SIGTERM stops it (exit 0), Ctrl-C too (exit 130); "
                                    "either hands the leases back."),
         interval: float = typer.Option(None, "--interval", metavar="SECONDS",
                                        help="With --watch: seconds between rounds (default 30)."),
         max_idle: int = typer.Option(None, "--max-idle", metavar="N", min=1,
                                      help="With --watch: stop after N rounds in a row found nothing to do."),
         json: bool = JsonOption):
    """Take pending files from the notes, pack their chunks, verify, and commit store + notes."""
    repo = open_repo()
    if (paths or force) and not release:
        fail("PATH arguments and --force go with --release", code=2)
    if device not in ("auto", "cpu", "cuda"):
        fail("--device must be auto, cpu or cuda", code=2)
    if job is not None and not JOB_ID.fullmatch(job):
        fail(f"--job {job!r} is not a job id (git panini dispatch prints them: 20261129T103000Z-1a2b3c-0)", code=2)
    if not watch and (interval is not None or max_idle is not None):
        fail("--interval and --max-idle go with --watch", code=2)
    if watch and (release or job or max_files or jobs > 1):
        fail("--watch runs one process (its threads use every core) over the whole queue: "
             "not with --release, --job, --max-files or -j", code=2)
    if interval is None:
        interval = WATCH_INTERVAL
    if not (math.isfinite(interval) and 0.1 <= interval <= 86400):
        fail(f"--interval must be a number of seconds from 0.1 to 86400, not {interval}", code=2)
    remote = None if no_remote else (remote_name_or_fail(remote) or default_remote(repo))
    if release:
        _release(repo, paths or [], remote, force, json)
        return
    skew = _skew(repo)
    from ..format.similarity import resolve_device  # numpy: loaded only when working
    try:
        device = resolve_device(device)
    except RuntimeError as e:
        fail(str(e))
    # One process by default, in threads: processes sharing one repository and a remote race on their claims.
    threads = threads or threads_per_job(jobs)
    if watch:
        path = repo.work_tree or repo.git_dir
        _watch(lambda: Worker(Repo(path), effort=effort, remote=remote, device=device, lease_seconds=lease,
                              skew=skew, threads=threads,
                              log=None if json else lambda m: err_console.print(m, markup=False, highlight=False)),
               interval, max_idle, json)
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
        details: list[str] = []   # the worker's own lines (segments, deltas, retries): to a log, not between bars
        with Progress("work", *progress_columns(),
                      console=err_console, transient=True, disable=json or not err_console.is_terminal) as progress:
            task = progress.add_task("work", total=_pending_bytes(repo, job, skew) or None)
            worker = Worker(repo, effort=effort, remote=remote, device=device, lease_seconds=lease, skew=skew,
                            threads=threads, log=None if json else details.append)
            try:
                results = [r.__dict__ for r in worker.run(max_files=max_files, job=job,
                                                          progress=lambda n: progress.advance(task, n))]
            except KeyboardInterrupt:
                # The leases went back (Worker.run): those files are claimable at once, no attempt counted.
                fail(f"interrupted; {len(worker.released)} file(s) handed back", code=130)
    failed = [r for r in results if not r["ok"]]
    if jobs <= 1 and details:
        logs.record(f"git panini work: {len(details)} line(s) of detail", git_dir=repo.common_dir, details=details)
    if json:
        print_json({"files": results})
    else:
        raw = sum(r["packed_bytes"] for r in results)
        stored = sum(r["stored_bytes"] for r in results)
        console.print(f"{len(results)} file(s) worked, {len(failed)} failed; packed {human(raw)} into "
                      f"{human(stored)}" + (f" ({stored / raw:.1%})" if raw else "")
                      + ("; details: git panini logs last" if jobs <= 1 and details else ""), markup=False)
        where = {f.pointer.manifest: f.path for f in pointers.in_tree(repo, "HEAD") if f.pointer} if failed else {}
        for r in failed:
            console.print(f"failed {where.get(r['manifest'], 'manifest ' + r['manifest'])}: {r['error']}",
                          markup=False, highlight=False)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer):
    app.command()(work)
