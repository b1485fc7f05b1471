"""The webhook worker behind `git panini serve`: jobs posted over HTTP, each run as `git panini work --job` in a clone kept here.

HTTP: waitress serves a small WSGI app (WebhookApp). `POST /jobs` {"job", "remote", "manifests"?}
answers 202 and the job's URL, or 200 for a job it already has (a job runs once); `GET /jobs/<id>`
its state, progress and result; `GET /healthz` that the server is up. Everything but /healthz needs
`Authorization: Bearer <token>`; with a secret, `POST /jobs` also needs X-Hub-Signature-256
(webhook.signature). A body over the limit gets 413 before it is read (waitress refuses it).

Jobs: one JSON record per job under WORKDIR/jobs (written before the answer, so a restart knows
every accepted job and runs again those that were queued or running), a fixed pool of threads, and
each job in a subprocess, so a job that crashes cannot take the server down. Each remote has one
partial clone under WORKDIR/clones, fetched (store and notes) before each job. A job is worked once
the remote's notes queue it: a dispatcher delivers first and publishes after (dispatch.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..git.repo import Repo, first_error_line
from ..store.notes import Notes
from ..work.lease import iso
from ..work.threads import threads_per_job
from .webhook import SECRET_ENV, SIGNATURE_HEADER, TOKEN_ENV, signature

DEFAULT_LISTEN = "127.0.0.1:8765"
DEFAULT_MAX_BODY = 1 << 20
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MANIFEST_ID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
# A remote the server may clone: a URL of a transport that runs no command here, or scp-like user@host:path.
REMOTE = re.compile(r"(?:https?|ssh|git|file)://[^\s]+\Z|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s-][^\s]*\Z")
STATES = ("queued", "running", "completed", "failed")
NOTES_WAIT_SECONDS = 120   # how long a delivered job may take to appear in the remote's notes
GIT_TIMEOUT = 3600         # a clone or fetch that hangs longer fails its job
STOP_GRACE_SECONDS = 60    # a terminated worker hands back its leases within this, or is killed
PROGRESS_SECONDS = 3       # a running job's progress is counted again at most this often
WSGI_THREADS = 4           # requests answered at once (jobs run in their own pool)


class ServeError(Exception):
    """The server cannot start; one line."""


class JobFailed(Exception):
    """A job could not be run; one line."""


class Stopped(Exception):
    """The server is stopping: the job goes back to queued and runs again at the next start."""


def _now() -> str:
    return iso(datetime.now(timezone.utc))


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8765', '[::1]:8765', '0.0.0.0:0' -> (host, port); ValueError otherwise."""
    host, sep, port = (text or "").rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}), not {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JobBook:
    """The job records: one JSON file per job, replaced atomically on every change."""

    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        for name in os.listdir(directory):
            if name.endswith(".json") and JOB_ID.match(name[:-5]):
                try:
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        record = json.load(f)
                except (OSError, ValueError):
                    continue
                if isinstance(record, dict) and record.get("job") == name[:-5] and record.get("state") in STATES:
                    self._records[record["job"]] = record

    def _write(self, record: dict):
        path = os.path.join(self.directory, record["job"] + ".json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)

    def get(self, job: str) -> dict | None:
        with self._lock:
            record = self._records.get(job)
            return json.loads(json.dumps(record)) if record else None

    def add(self, job: str, remote: str, manifests: list[str]) -> tuple[dict, bool]:
        """(the record, True) for a new job, written before this returns; (the existing one, False)."""
        with self._lock:
            if job in self._records:
                return dict(self._records[job]), False
            record = {"job": job, "remote": remote, "manifests": manifests, "state": "queued",
                      "progress": {"phase": "queued"}, "result": None, "created": _now(), "started": None,
                      "finished": None, "runs": 0}
            self._write(record)
            self._records[job] = record
            return dict(record), True

    def update(self, job: str, while_state: str | None = None, **fields) -> dict:
        """Change a record (only while it is in `while_state`, if given) and write it."""
        with self._lock:
            if while_state is not None and self._records[job]["state"] != while_state:
                return dict(self._records[job])
            record = dict(self._records[job], **fields)
            try:
                self._write(record)
            except OSError as e:
                # A full disk must not kill the job's thread: clients still get the state, and the record
                # says it will not survive a restart.
                record["record_error"] = f"cannot write the job record: {e.strerror or e}"
            self._records[job] = record
            return dict(record)

    def unfinished(self) -> list[str]:
        """Jobs a stop (or a crash) left queued or running, oldest first."""
        with self._lock:
            return [r["job"] for r in sorted(self._records.values(), key=lambda r: r["created"])
                    if r["state"] in ("queued", "running")]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(r["state"] for r in self._records.values()))


def _end_orphan(record: dict, log, grace: float = STOP_GRACE_SECONDS):
    """A worker a previous server started for this job and left running (killed with -9: its workers lead
    sessions of their own, so they outlive it): end it, so that it hands its leases back, before the job runs
    again in the same clone (two workers in one clone would share its refs)."""
    pid = record.get("worker_pid")
    if not isinstance(pid, int) or pid <= 1:
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return   # gone (or no /proc: nothing to find it by)
    if b"git_panini" not in argv or record["job"].encode() not in argv:
        return   # the pid was reused by something else
    log(f"job {record['job']}: ending the worker a previous server left running (pid {pid})")
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while os.path.exists(f"/proc/{pid}") and not _zombie(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
            return


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def _signal_group(proc: subprocess.Popen, sig: int):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class JobRunner:
    """A fixed pool of job threads; each job's git and worker processes are tracked so a stop can end them."""

    def __init__(self, book: JobBook, workdir: str, concurrency: int, effort: int, env: dict, log):
        self.book = book
        self.workdir = workdir
        self.effort = effort
        self.threads = threads_per_job(concurrency)
        self.env = env
        self.log = log
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="panini-job")
        # Each running job has a clone of its own (slot): two `git panini work` in one repository
        # race on its local refs and index; across clones they meet only in the remote's CAS.
        self._slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(concurrency):
            self._slots.put(slot)
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        self._clone_locks: dict[str, threading.Lock] = {}
        self._fetched: dict[str, float] = {}                   # clone -> when its last fetch started
        self._accepted: dict[str, float] = {}                  # job -> when it was submitted
        self._working: dict[str, tuple[str, list[str]]] = {}   # job -> (clone, files) while its worker runs
        self._progress_at: dict[str, float] = {}

    def submit(self, job: str):
        self._accepted[job] = time.monotonic()
        self._pool.submit(self._run, job)

    def stop(self, grace: float = STOP_GRACE_SECONDS):
        """Start no more jobs; SIGTERM the running processes (a worker hands back its leases), kill
        what is left after `grace` seconds, and wait for the job threads."""
        self.stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        # Each process leads its own group (start_new_session): the signal reaches what it started too
        # (git's remote helpers, which would otherwise hold a stuck clone's pipe open for GIT_TIMEOUT).
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in procs:   # the leader may be gone while its group lives on
            _signal_group(proc, signal.SIGKILL)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- one job ---------------------------------------------------------------------------------
    def _run(self, job: str):
        if self.stopping.is_set():
            return
        started = time.monotonic()
        try:
            result = self._work(job)
        except Stopped:
            self.book.update(job, state="queued", progress={"phase": "interrupted: runs again when the server starts"})
            self.log(f"job {job}: interrupted by the stop; queued again (a worker hands its leases back first)")
            return
        except JobFailed as e:
            self.book.update(job, state="failed", finished=_now(), result={"error": str(e)},
                             progress=dict(self.book.get(job)["progress"], phase="failed"))
            self.log(f"job {job}: failed: {e}")
            return
        except Exception as e:   # noqa: BLE001 - a bug here fails this job, not the server
            self.book.update(job, state="failed", finished=_now(), result={"error": f"{type(e).__name__}: {e}"})
            self.log(f"job {job}: failed: {type(e).__name__}: {e}")
            return
        finally:
            self._accepted.pop(job, None)
            self._progress_at.pop(job, None)
        state = "completed" if result["exit"] == 0 else "failed"
        self.book.update(job, state=state, finished=_now(), result=result,
                         progress=dict(self.book.get(job)["progress"], phase=state))
        took = time.monotonic() - started
        self.log(f"job {job}: {state}: {result['files']} file(s) worked, {result['failed']} failed, "
                 f"{result['packed_bytes']} bytes packed into {result['stored_bytes']} in {took:.1f} s")

    def _work(self, job: str) -> dict:
        record = self.book.update(job, state="running", started=_now(), progress={"phase": "clone"})
        self.log(f"job {job}: running (remote {record['remote']})")
        slot = self._slots.get()
        try:
            return self._work_in(job, record, slot)
        finally:
            self._slots.put(slot)

    def _work_in(self, job: str, record: dict, slot: int) -> dict:
        clone = self._clone(record["remote"], slot, self._accepted.get(job, 0))
        self.book.update(job, progress={"phase": "waiting for the notes to queue it"})
        files = self._queued_files(job, clone)
        runs = self.book.get(job)["runs"] + 1
        self.book.update(job, runs=runs, progress={"phase": "work", "files": len(files), "completed": 0, "failed": 0})
        cmd = [sys.executable, "-m", "git_panini", "work", "--job", job, "--remote", "origin", "--json",
               "--effort", str(self.effort), "--threads", str(self.threads)]
        proc = self._spawn(cmd, clone)
        self.book.update(job, worker_pid=proc.pid)   # a server killed with -9 leaves it running: see _end_orphan
        self._working[job] = (clone, files)
        try:
            out, err = proc.communicate()
        finally:
            self._working.pop(job, None)
            self._forget(proc)
        with open(os.path.join(self.book.directory, job + ".log"), "ab") as f:
            f.write(f"--- run {runs} ended {_now()} exit {proc.returncode}\n".encode() + err)
        if self.stopping.is_set() and proc.returncode != 0:
            raise Stopped()
        try:
            results = json.loads(out)["files"]
        except (ValueError, KeyError, TypeError):
            raise JobFailed(f"git panini work exited {proc.returncode}: {first_error_line(err, proc.returncode)}") from None
        self._progress(job, clone, files)
        failed = [r for r in results if not r.get("ok")]
        return {"exit": proc.returncode, "files": len(results), "failed": len(failed),
                "packed_bytes": sum(r.get("packed_bytes") or 0 for r in results),
                "stored_bytes": sum(r.get("stored_bytes") or 0 for r in results),
                "errors": [{"manifest": r.get("manifest"), "error": r.get("error")} for r in failed[:10]]}

    def _clone(self, remote: str, slot: int, since: float) -> str:
        """This slot's partial clone of the remote (made once), with the remote's store and notes as
        fetched after `since` (one fetch serves every job accepted before it started)."""
        key = f"{hashlib.sha256(remote.encode()).hexdigest()[:16]}-{slot}"
        path = os.path.join(self.workdir, "clones", key)
        with self._lock:
            lock = self._clone_locks.setdefault(key, threading.Lock())
        with lock:
            if not os.path.isdir(os.path.join(path, ".git")):
                partial = path + ".partial"
                shutil.rmtree(partial, ignore_errors=True)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                # No blobs and no checkout, as the worker workflow: the job fetches just its chunks.
                self._git(["git", "clone", "--quiet", "--filter=blob:none", "--no-checkout", "--", remote, partial],
                          self.workdir, f"cannot clone {remote}")
                os.rename(partial, path)
            if self._fetched.get(key, -1.0) < since:
                self._fetch(path, remote)
        return path

    def _fetch(self, clone: str, remote: str):
        started = time.monotonic()
        self._git([sys.executable, "-m", "git_panini", "fetch", "origin"], clone, f"cannot fetch from {remote}")
        self._fetched[os.path.basename(clone)] = started

    def _queued_files(self, job: str, clone: str) -> list[str]:
        """The files the remote's notes give to this job, fetching again until they appear (the
        dispatcher publishes right after delivering) or NOTES_WAIT_SECONDS pass."""
        deadline = time.monotonic() + NOTES_WAIT_SECONDS
        delay = 0.2
        while True:
            files = [m for m, note in self._notes(clone).items() if note.get("job") == job]
            if files:
                return files
            if time.monotonic() > deadline:
                raise JobFailed(f"the remote's notes never queued job {job} (its dispatch was not published)")
            if self.stopping.wait(delay):
                raise Stopped()
            delay = min(2.0, delay * 2)
            with self._clone_locks[os.path.basename(clone)]:
                self._fetch(clone, self.book.get(job)["remote"])

    @staticmethod
    def _notes(clone: str) -> dict[str, dict]:
        repo = Repo(clone)
        try:
            return Notes(repo).all()
        finally:
            repo.close()

    def _progress(self, job: str, clone: str, files: list[str]):
        notes = self._notes(clone)
        states = Counter((notes.get(m) or {}).get("status") for m in files)
        self.book.update(job, "running", progress={"phase": "work", "files": len(files),
                                                   "completed": states["completed"], "failed": states["failed"]})

    def refresh_progress(self, job: str):
        """Count the job's files done so far (from the clone's notes, which its worker updates), when
        someone asks and at most every PROGRESS_SECONDS: a job nobody watches costs nothing."""
        working = self._working.get(job)
        with self._lock:
            if working is None or time.monotonic() - self._progress_at.get(job, 0) < PROGRESS_SECONDS:
                return
            self._progress_at[job] = time.monotonic()
        self._progress(job, *working)

    # --- processes -------------------------------------------------------------------------------
    def _spawn(self, cmd: list[str], cwd: str) -> subprocess.Popen:
        with self._lock:   # checked and registered at once: a stop never misses a process
            if self.stopping.is_set():
                raise Stopped()
            proc = subprocess.Popen(cmd, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            self._procs[proc.pid] = proc
            return proc

    def _forget(self, proc: subprocess.Popen):
        with self._lock:
            self._procs.pop(proc.pid, None)

    def _git(self, cmd: list[str], cwd: str, what: str):
        proc = self._spawn(cmd, cwd)
        try:
            _, err = proc.communicate(timeout=GIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise JobFailed(f"{what}: no answer within {GIT_TIMEOUT} s") from None
        finally:
            self._forget(proc)
        if proc.returncode != 0:
            if self.stopping.is_set():
                raise Stopped()
            raise JobFailed(f"{what}: {first_error_line(err, proc.returncode)}")


class WebhookApp:
    """The WSGI application: routing, authentication, limits and the JSON answers."""

    def __init__(self, book: JobBook, runner: JobRunner, token: str | None, secret: str | None, max_body: int, log,
                 allowed: tuple[str, ...] = ()):
        self.allowed = tuple(_same_remote(r) for r in allowed)
        self.book = book
        self.runner = runner
        self.token = token.encode() if token else None
        self.secret = secret or None
        self.max_body = max_body
        self.log = log

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO") or "/"
        try:
            status, body, note = self._route(method, path, environ)
        except Exception as e:   # noqa: BLE001 - one line to the client and the log, never a traceback
            status, body, note = 500, {"error": f"{type(e).__name__}: {e}"[:300]}, ""
        self.log(f"{environ.get('REMOTE_ADDR', '-')} {method} {path[:200]} {status}" + (f" {note}" if note else ""))
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="git-panini"'))
        if status == 405:
            headers.append(("Allow", "POST" if path == "/jobs" else "GET"))
        if status in (200, 202) and "url" in body:
            headers.append(("Location", body["url"]))
        data = json.dumps(body, sort_keys=True).encode() + b"\n"
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [data]

    def _route(self, method: str, path: str, environ) -> tuple[int, dict, str]:
        if path == "/healthz":
            if method not in ("GET", "HEAD"):
                return 405, {"error": "use GET"}, ""
            return 200, {"ok": True}, ""
        if path == "/jobs":
            if method != "POST":
                return 405, {"error": "use POST"}, ""
            return self._authenticated(environ) or self._post(environ)
        if path.startswith("/jobs/"):
            if method not in ("GET", "HEAD"):
                return 405, {"error": "use GET"}, ""
            return self._authenticated(environ) or self._get(path[len("/jobs/"):])
        return 404, {"error": "no such endpoint (POST /jobs, GET /jobs/<id>, GET /healthz)"}, ""

    def _authenticated(self, environ) -> tuple[int, dict, str] | None:
        if self.token is None:
            return None
        scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
            return None
        return 401, {"error": "missing or wrong bearer token"}, ""

    def _post(self, environ) -> tuple[int, dict, str]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, {"error": "bad Content-Length"}, ""
        if length > self.max_body:
            return 413, {"error": f"body over {self.max_body} bytes"}, ""
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if self.secret:
            given = environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), "")
            if not hmac.compare_digest(given.encode(), signature(self.secret, body).encode()):
                return 401, {"error": f"missing or wrong {SIGNATURE_HEADER}"}, ""
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return 400, {"error": "the body is not JSON"}, ""
        problem = _bad_request(request, self.allowed)
        if problem:
            return 400, {"error": problem}, ""
        job = request["job"]
        record, new = self.book.add(job, request["remote"], request.get("manifests") or [])
        if record["remote"] != request["remote"]:
            return 409, {"error": f"job {job} exists for another remote"}, f"job {job}"
        if new:
            self.runner.submit(job)
        answer = {"job": job, "url": f"/jobs/{job}", "state": record["state"]}
        return (202, answer, f"job {job} accepted") if new else (200, answer, f"job {job} already known")

    def _get(self, job: str) -> tuple[int, dict, str]:
        if JOB_ID.match(job):
            self.runner.refresh_progress(job)
        record = self.book.get(job) if JOB_ID.match(job) else None
        if record is None:
            return 404, {"error": f"no job {job[:130]!r}"}, ""
        return 200, {k: record[k] for k in ("job", "state", "progress", "result", "created", "started",
                                            "finished", "runs")}, ""


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}


def _same_remote(url: str) -> str:
    """A remote URL as compared with --allow-remote: without a trailing slash or `.git`."""
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def _bad_request(request, allowed: tuple[str, ...] = ()) -> str | None:
    """What is wrong with a POST /jobs body, or None. allowed: the only remotes this server works for
    (empty: any remote its own credentials reach)."""
    if not isinstance(request, dict):
        return "the body must be a JSON object"
    job, remote, manifests = request.get("job"), request.get("remote"), request.get("manifests", [])
    if not isinstance(job, str) or not JOB_ID.match(job):
        return "job: an id of letters, digits, '.', '_' or '-' (at most 128) is required"
    if not isinstance(remote, str) or not REMOTE.match(remote):
        return "remote: an https://, http://, ssh://, git:// or file:// URL (or user@host:path) is required"
    if ":" in urllib.parse.urlsplit(remote).netloc.rpartition("@")[0]:
        return "remote: a URL holding a password or token; the server uses credentials of its own"
    if allowed and _same_remote(remote) not in allowed:
        return "remote: not one this server works for (--allow-remote)"
    if manifests is not None and (not isinstance(manifests, list)
                                  or not all(isinstance(m, str) and MANIFEST_ID.match(m) for m in manifests)):
        return "manifests: a list of manifest ids (hex object ids)"
    return None


def serve(listen: str, workdir: str, concurrency: int = 1, max_body: int = DEFAULT_MAX_BODY,
          token: str | None = None, secret: str | None = None, effort: int = 2, log=print,
          allowed: tuple[str, ...] = ()) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, end the running jobs (their leases go back)
    and return. token None: no authentication (the caller allows that on loopback only). allowed: the
    only remotes jobs may name (a holder of the token could otherwise make this machine's credentials
    fetch from, and push to, any host)."""
    from waitress import create_server
    host, port = parse_listen(listen)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    lock = open(os.path.join(workdir, "serve.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ServeError(f"another git panini serve uses {workdir}") from None
    book = JobBook(os.path.join(workdir, "jobs"))
    # The workers need no webhook credentials: they push with the remote's own.
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, SECRET_ENV)} | {"GIT_TERMINAL_PROMPT": "0"}
    runner = JobRunner(book, workdir, concurrency, effort, env, log)
    app = WebhookApp(book, runner, token, secret, max_body, log, allowed)
    try:
        server = create_server(app, host=host, port=port, threads=WSGI_THREADS, max_request_body_size=max_body,
                               ident="git-panini", clear_untrusted_proxy_headers=True, asyncore_use_poll=True)
    except (OSError, ValueError) as e:
        raise ServeError(f"cannot listen on {listen}: {e}") from None

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = server.effective_host, server.effective_port
    log(f"listening on http://{'[%s]' % bound[0] if ':' in str(bound[0]) else bound[0]}:{bound[1]} "
        f"(workdir {workdir}, {concurrency} job(s) at once, "
        f"{'no authentication' if token is None else 'bearer token' + (' and signature' if secret else '')})")
    try:
        for job in book.unfinished():
            _end_orphan(book.get(job), log)
            book.update(job, state="queued", progress={"phase": "queued"}, worker_pid=None)
            runner.submit(job)
            log(f"job {job}: resumed from {workdir}")
        server.run()       # waitress ends its loop on SystemExit (the signal handler)
    except SystemExit:
        pass
    finally:
        server.close()     # stop accepting
        log("stopping: ending the running jobs (they hand their leases back)")
        runner.stop()
        log("stopped")
        lock.close()
