"""The dispatcher: plans jobs from the work queue (the status notes), queues them under a lease, hands them over.

A job is a set of manifests whose notes say `status: queued`, `job: <id>`, `lease_until: <time>`.
The notes are published (pushed) after a hand-over that can fail and before the matrix outputs.
`git panini work --job <id>` (on this machine, or on a GitHub runner) claims exactly those. A job that
never starts loses its lease and is planned again by a later dispatch, as are expired `processing`
leases and failures with attempts left (worker.claimable decides). Jobs whose hand-over fails go
back to pending at once, so the notes never say `queued` for work nobody was asked to do.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..store.notes import Notes
from ..transfer.sync import SyncError, fetch, push
from ..work.claims import MAX_ATTEMPTS, claimable
from ..work.lease import NO_HOLDER
from ..work.threads import threads_per_job

DEFAULT_MAX_JOBS = 4
DEFAULT_JOB_BYTES = 256 << 20
DEFAULT_LEASE_SECONDS = 3600      # time for a queued job to start (runners can queue for a while)

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000 ** 2, "mb": 1000 ** 2, "mib": 1 << 20,
          "g": 1000 ** 3, "gb": 1000 ** 3, "gib": 1 << 30, "t": 1000 ** 4, "tb": 1000 ** 4, "tib": 1 << 40}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DispatchError(Exception):
    """The hand-over failed; the message is one line. The jobs it names went back to pending."""


def parse_size(text: str) -> int:
    """'256MiB', '64M', '1.5GiB', '1000' -> bytes (K/M/G are powers of 1000, KiB/MiB/GiB of 1024)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 256MiB, 64M, 1GiB)")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


@dataclass
class Job:
    id: str
    manifests: list[str] = field(default_factory=list)
    bytes: int = 0

    def as_dict(self) -> dict:
        return {"id": self.id, "files": len(self.manifests), "bytes": self.bytes, "manifests": list(self.manifests)}


def weight(note: dict) -> int:
    """What a file costs a worker: its new bytes after dedup when known, else its size."""
    unique = note.get("unique_bytes")
    if note.get("chunks") and isinstance(unique, int):
        return max(unique, 0)
    return int(note.get("bytes") or 0)


def _by_priority(items: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Fresh work before retries; small before big (by size class, so files of about the same size
    go by age); recently added before old; then by manifest id, so a plan is reproducible."""
    items = sorted(items, key=lambda item: item[0])
    items.sort(key=lambda item: str(item[1].get("updated") or ""), reverse=True)
    items.sort(key=lambda item: (int(item[1].get("attempts") or 0), weight(item[1]).bit_length()))
    return items


JOB_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}-\d{1,6}")


def new_job_id(at: datetime, n: int) -> str:
    """A job's id: when it was planned, a random part (two dispatchers never collide), its place in the plan."""
    return f"{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}-{n}"


def plan(notes: dict[str, dict], at: datetime, max_jobs: int = DEFAULT_MAX_JOBS,
         job_bytes: int = DEFAULT_JOB_BYTES, max_attempts: int = MAX_ATTEMPTS) -> list[Job]:
    """Bin-pack the claimable work into at most max_jobs jobs of about job_bytes each.

    First fit in priority order: each file goes into the first job with room; a file bigger than
    job_bytes gets a job of its own; what does not fit waits for the next dispatch.
    """
    if max_jobs < 1 or job_bytes < 1:
        raise ValueError("max_jobs and job_bytes must be positive")
    todo = _by_priority([(m, n) for m, n in notes.items() if claimable(n, at, max_attempts)])
    jobs: list[Job] = []
    for manifest, note in todo:
        cost = weight(note)
        target = next((j for j in jobs if j.bytes + cost <= job_bytes), None)
        if target is None:
            if len(jobs) >= max_jobs:
                continue
            target = Job(new_job_id(at, len(jobs) + 1))
            jobs.append(target)
        target.manifests.append(manifest)
        target.bytes += cost
    return jobs


class Dispatcher:
    """Queue, publish, release. The order matters because of how notes merge (a higher state wins):
    once `queued` is on the remote, a `pending` written later can never replace it. So a hand-over
    that can fail (an API dispatch, starting processes) happens before the notes are published, and
    a failed job is released locally first; only the matrix output, which cannot fail half-way,
    is written after publishing."""

    def __init__(self, repo, remote: str | None = None, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 max_attempts: int = MAX_ATTEMPTS, log=None):
        self.repo = repo
        self.remote = remote
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.notes = Notes(repo)
        self.log = log or (lambda message: None)

    def queue(self, max_jobs: int = DEFAULT_MAX_JOBS, job_bytes: int = DEFAULT_JOB_BYTES,
              dry_run: bool = False) -> list[Job]:
        """Fetch the remote's notes, plan jobs and mark their notes queued (job id, lease) in this
        repository. Nothing is published yet (see publish). dry_run: plan only, write nothing."""
        if self.remote:
            try:
                fetch(self.repo, self.remote)
            except SyncError as e:
                raise DispatchError(str(e)) from None
        at = datetime.now(timezone.utc)
        jobs = plan(self.notes.all(), at, max_jobs, job_bytes, self.max_attempts)
        if dry_run or not jobs:
            return jobs
        lease = _iso(at + timedelta(seconds=self.lease_seconds))
        assigned = {m: job.id for job in jobs for m in job.manifests}

        def change(manifest, note):
            if not claimable(note, at, self.max_attempts):
                return None      # someone took it since we planned
            return dict(note, status="queued", job=assigned[manifest], lease_until=lease, **NO_HOLDER)

        written = self.notes.transition(sorted(assigned), change, f"panini: dispatch {len(jobs)} job(s)")
        for job in jobs:
            job.manifests = [m for m in job.manifests if m in written]
        return [job for job in jobs if job.manifests]

    def publish(self, jobs: list[Job]) -> list[Job]:
        """Push the notes; return the jobs with only the files still queued for them after the merge
        with other writers. On failure the jobs go back to pending here and DispatchError says why."""
        if not self.remote or not jobs:
            return jobs
        try:
            push(self.repo, self.remote, revs=[])   # the notes only: no new files to publish
        except SyncError as e:
            self.release(jobs)
            raise DispatchError(f"could not publish the queued jobs (they are pending again): {e}") from None
        current = self.notes.all()
        for job in jobs:
            job.manifests = [m for m in job.manifests if (current.get(m) or {}).get("status") == "queued"
                             and (current.get(m) or {}).get("job") == job.id]
            job.bytes = sum(weight(current[m]) for m in job.manifests)
        return [job for job in jobs if job.manifests]

    def release(self, jobs: list[Job]) -> int:
        """Put the files of jobs that were never handed over back to pending, in this repository
        (where they are still queued for those jobs); publish() or the next push carries it out."""
        ids = {job.id for job in jobs}
        manifests = sorted({m for job in jobs for m in job.manifests})
        if not manifests:
            return 0

        def change(manifest, note):
            if not note or note.get("status") != "queued" or note.get("job") not in ids:
                return None
            return dict(note, status="pending", job=None, lease_until=None)

        return len(self.notes.transition(manifests, change, f"panini: release {len(ids)} job(s) not handed over"))


# --- backends -------------------------------------------------------------------------------------

def run_local(repo, jobs: list[Job], remote: str | None, effort: int | None = None, wait: bool = True,
              dispatcher: Dispatcher | None = None, log=None) -> list[dict]:
    """Start one `git panini work --job ID` process per job on this machine.

    wait: wait for them and return their exit codes; otherwise return their pids. A job whose process
    cannot start goes back to pending.
    """
    log = log or (lambda message: None)
    cwd = repo.work_tree or repo.git_dir
    threads = threads_per_job(max(1, len(jobs)))
    started, failed = [], []
    for job in jobs:
        # The jobs run at once: they share this machine's cores rather than each taking all of them.
        cmd = [sys.executable, "-m", "git_panini", "work", "--job", job.id, "--threads", str(threads)]
        cmd += ["--remote", remote] if remote else ["--no-remote"]
        if effort is not None:
            cmd += ["--effort", str(effort)]
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if wait else subprocess.DEVNULL,
                                    stderr=subprocess.STDOUT if wait else subprocess.DEVNULL,
                                    start_new_session=not wait)
        except OSError as e:
            log(f"job {job.id}: could not start a worker: {e}")
            failed.append(job)
            continue
        started.append((job, proc))
    if failed and dispatcher is not None:
        dispatcher.release(failed)
    results = []
    for job, proc in started:
        if wait:
            out, _ = proc.communicate()
            results.append({"job": job.id, "pid": proc.pid, "exit": proc.returncode,
                            "output": out.decode(errors="replace").strip().splitlines()[-1:] if out else []})
        else:
            results.append({"job": job.id, "pid": proc.pid, "exit": None, "output": []})
    if failed:
        raise DispatchError(f"{len(failed)} worker process(es) could not start; their jobs are pending again")
    return results


def _hand_over(jobs: list[Job], send, failure: type[Exception], verb: str, dispatcher: Dispatcher | None,
               log) -> list[Job]:
    """send(job) -> where it went, for each job in turn. On the first failure, that job and every later
    one go back to pending (here; publish afterwards) and DispatchError says why; the jobs handed over
    before it stay queued (their workers are on the way)."""
    log = log or (lambda message: None)
    done: list[Job] = []
    for i, job in enumerate(jobs):
        try:
            where = send(job)
        except failure as e:
            left = jobs[i:]
            if dispatcher is not None:
                dispatcher.release(left)
            raise DispatchError(f"{e} ({len(done)} job(s) {verb}, {len(left)} back to pending)") from None
        log(f"{verb} job {job.id} ({len(job.manifests)} files) to {where}")
        done.append(job)
    return done


def hand_over_then_publish(dispatcher: Dispatcher, jobs: list[Job], hand_over) -> str | None:
    """The rule of every backend: hand the jobs over first (hand_over()), publish their `queued` notes after,
    also when the hand-over failed: a job that could not be handed over was released by it, before its
    `queued` note reached the remote (where no later `pending` could undo it). Returns the error, or None."""
    error = None
    try:
        hand_over()
    except DispatchError as e:
        error = str(e)
    try:
        dispatcher.publish(jobs)
    except DispatchError as e:
        error = f"{error}; {e}" if error else str(e)
    return error


def dispatch_github(client, jobs: list[Job], workflow: str, ref: str, runner: str, device: str,
                    dispatcher: Dispatcher | None = None, log=None) -> list[Job]:
    """One workflow_dispatch of the worker workflow per job (inputs: jobs, runner, device)."""
    from .github import GitHubError

    def send(job: Job) -> str:
        client.dispatch_workflow(workflow, ref, {"jobs": json.dumps([job.id]), "runner": runner, "device": device})
        return f"{workflow}@{ref}"
    return _hand_over(jobs, send, GitHubError, "dispatched", dispatcher, log)


def dispatch_webhook(client, jobs: list[Job], remote_url: str, dispatcher: Dispatcher | None = None,
                     log=None) -> list[Job]:
    """POST each job to a `git panini serve` (webhook.WebhookClient: retries and backoff). The server waits
    for the published notes before it works a job, so delivering before publishing is safe."""
    from .webhook import WebhookError

    def send(job: Job) -> str:
        answer = client.deliver(job.id, remote_url, job.manifests)
        return f"{client.url}{answer.get('url', '')}"
    return _hand_over(jobs, send, WebhookError, "delivered", dispatcher, log)


def matrix_outputs(jobs: list[Job]) -> dict[str, str]:
    """Step outputs for a matrix of worker jobs: jobs (JSON list of ids), count, matrix ({"job": [...]})."""
    ids = [job.id for job in jobs]
    return {"jobs": json.dumps(ids, separators=(",", ":")), "count": str(len(ids)),
            "matrix": json.dumps({"job": ids}, separators=(",", ":")),
            "bytes": str(sum(job.bytes for job in jobs))}


def normalize_runner(text: str) -> str:
    """Runner labels for `runs-on`, as a JSON list: '["self-hosted","gpu"]' or 'self-hosted, gpu'."""
    text = (text or "").strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except ValueError:
            raise ValueError(f"runner labels are not valid JSON: {text!r}") from None
    else:
        labels = [label.strip() for label in text.split(",")]
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ValueError("runner labels must be a non-empty list of names")
    return json.dumps(labels, separators=(",", ":"))


def default_ref(repo) -> str:
    """The branch the worker workflow is dispatched on: $GITHUB_REF_NAME in Actions, else our branch."""
    ref = os.environ.get("GITHUB_REF_NAME") if os.environ.get("GITHUB_REF_TYPE", "branch") == "branch" else None
    if ref:
        return ref
    branch = repo.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.decode().strip()
    return branch or "main"
