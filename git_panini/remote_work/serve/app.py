"""The HTTP side of `git panini serve`: a small WSGI app (waitress serves it) with routing, authentication,
limits and the JSON answers.

`POST /jobs` {"job", "remote", "manifests"?} answers 202 and the job's URL, or 200 for a job it already has (a
job runs once); 429 with Retry-After while --max-queued jobs wait already; `GET /jobs/<id>` its state,
progress and result; `GET /healthz` that the server is up. Everything but /healthz needs `Authorization:
Bearer <token>`; with a secret, `POST /jobs` also needs X-Hub-Signature-256 (webhook.signature). A body over
the limit gets 413 before it is read (waitress refuses it). Errors are one line of JSON, and never name a path
of this machine (an unexpected error says only that: the server's log has the rest).
"""

from __future__ import annotations

import hmac
import json
import re
import urllib.parse

from ..webhook import SIGNATURE_HEADER, signature
from .book import JOB_ID, JobBook, QueueFull
from .runner import JobRunner

MANIFEST_ID = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
# A remote the server may clone: a URL of a transport that runs no command here, or scp-like user@host:path.
REMOTE = re.compile(r"(?:https?|ssh|git|file)://[^\s]+\Z|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s-][^\s]*\Z")
DEFAULT_MAX_QUEUED = 100   # jobs that may wait for a slot; one more gets 429
RETRY_AFTER_SECONDS = 30   # what a 429 asks a client to wait (dispatch waits up to 30 s, then gives up)


class WebhookApp:
    """The WSGI application: routing, authentication, limits and the JSON answers."""

    def __init__(self, book: JobBook, runner: JobRunner, token: str | None, secret: str | None, max_body: int, log,
                 allowed: tuple[str, ...] = (), max_queued: int = DEFAULT_MAX_QUEUED):
        self.allowed = tuple(_same_remote(r) for r in allowed)
        self.max_queued = max_queued
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
        except Exception as e:   # noqa: BLE001 - the log has the reason; the client learns nothing of this machine
            status, body = 500, {"error": "internal error (the server's log says why)"}
            note = " ".join(f"{type(e).__name__}: {e}".split())
        self.log(f"{environ.get('REMOTE_ADDR', '-')} {method} {path[:200]} {status}" + (f" {note}" if note else ""))
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="git-panini"'))
        if status == 429:
            headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
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
        try:
            record, new = self.book.add(job, request["remote"], request.get("manifests") or [], self.max_queued)
        except QueueFull as e:
            return 429, {"error": f"too many jobs waiting ({e.waiting}, --max-queued {self.max_queued}); "
                                  f"retry in {RETRY_AFTER_SECONDS} s"}, f"job {job} refused: queue full"
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
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error"}


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


