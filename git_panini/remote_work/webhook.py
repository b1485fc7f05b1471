"""The webhook protocol: job deliveries to a `git panini serve` (retries, backoff, signature) and polling their state.

A delivery is `POST <url>/jobs` with {"job", "remote", "manifests"}, `Authorization: Bearer <token>`
and, when a secret is set, `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` (as GitHub signs
its webhooks). Connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
(Retry-After honoured, up to a bound); any other 4xx is final. The server answers 202 for a new job
and 200 for one it already has (it runs once either way).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.parse
from urllib.parse import urlsplit

import requests
import requests.auth

TOKEN_ENV = "PANINI_WEBHOOK_TOKEN"
SECRET_ENV = "PANINI_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_RETRIES = 4             # attempts after the first
FIRST_BACKOFF = 0.5             # seconds; doubles each attempt
MAX_BACKOFF = 30.0              # a longer Retry-After is not waited for: the delivery fails instead
TIMEOUT = (10, 30)              # connect, read (seconds)
RETRIED_STATUSES = {408, 429}   # and every 5xx
DONE_STATES = ("completed", "failed")


class WebhookError(Exception):
    """A delivery or a poll failed for good; the message is one line."""


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value of a body: sha256=<hex HMAC-SHA256 keyed by the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> str:
    """The server's base URL without a trailing slash; ValueError unless it is http(s)://host[:port][/path]."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"--url must be an http:// or https:// URL of a git panini serve, not {url!r}")
    return url.rstrip("/")


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None     # an HTTP date: fall back to our own backoff


def _reason(response) -> str:
    """One line from an error response: its JSON `error`, else its status line."""
    try:
        text = str(response.json().get("error") or "")
    except (ValueError, AttributeError):
        text = ""
    text = " ".join(text.split())[:200]
    return f"HTTP {response.status_code}" + (f": {text}" if text else f" {response.reason or ''}".rstrip())


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class WebhookClient:
    def __init__(self, url: str, token: str, secret: str | None = None, retries: int = DEFAULT_RETRIES, log=None):
        self.url = check_url(url)
        self.secret = secret or None
        self.retries = max(0, retries)
        self.log = log or (lambda message: None)
        self.session = requests.Session()
        self.session.auth = _Bearer(token)   # an auth of our own: requests then never swaps in a ~/.netrc login

    def _headers(self, body: bytes | None) -> dict:
        headers = {"Accept": "application/json", "User-Agent": "git-panini-dispatch"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            if self.secret:
                headers[SIGNATURE_HEADER] = signature(self.secret, body)
        return headers

    def _request(self, method: str, path: str, body: bytes | None = None, ok=(200,)) -> dict:
        """One call with retries; the JSON answer, or WebhookError with the last reason."""
        where = self.url + path
        for attempt in range(self.retries + 1):
            response, reason = None, ""
            try:
                response = self.session.request(method, where, data=body, headers=self._headers(body),
                                                timeout=TIMEOUT, allow_redirects=False)
            except requests.Timeout:
                reason = f"no answer within {TIMEOUT[1]} s"
            except requests.RequestException as e:
                reason = f"cannot reach the server ({type(e).__name__})"
            if response is not None:
                if response.status_code in ok:
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    if not isinstance(answer, dict):
                        raise WebhookError(f"{where} answered {response.status_code} without a JSON object: "
                                           "is it a git panini serve?")
                    return answer
                reason = _reason(response)
                if not (response.status_code in RETRIED_STATUSES or response.status_code >= 500):
                    raise WebhookError(f"{method} {where}: {reason}")
            if attempt == self.retries:
                break
            wait = FIRST_BACKOFF * 2 ** attempt * (0.75 + random.random() / 2)
            asked = _retry_after(response)
            if asked is not None:
                if asked > MAX_BACKOFF:
                    raise WebhookError(f"{method} {where}: {reason}; the server asks to wait {asked:.0f} s")
                wait = max(wait, asked)
            self.log(f"{method} {where}: {reason}; retrying in {wait:.1f} s")
            time.sleep(wait)
        raise WebhookError(f"{method} {where}: {reason} (after {self.retries + 1} attempt(s))")

    def deliver(self, job: str, remote: str, manifests: list[str]) -> dict:
        """POST one job; the server's answer ({"job", "url", "state"})."""
        body = json.dumps({"job": job, "remote": remote, "manifests": manifests}, separators=(",", ":")).encode()
        return self._request("POST", "/jobs", body, ok=(200, 202))

    def state(self, job: str) -> dict:
        return self._request("GET", f"/jobs/{job}")

    def wait(self, jobs: list[str], deadline: float, interval: float = 1.0,
             max_interval: float = 10.0) -> dict[str, dict]:
        """Poll each job until the server says completed or failed; {job: its record}. WebhookError once
        time.monotonic() passes deadline (the jobs' lease: after it their files are anyone's again)."""
        done: dict[str, dict] = {}
        while len(done) < len(jobs):
            if time.monotonic() > deadline:
                raise WebhookError(f"{len(jobs) - len(done)} job(s) not done when their lease ran out")
            for job in jobs:
                if job not in done:
                    record = self.state(job)
                    if record.get("state") in DONE_STATES:
                        done[job] = record
            if len(done) < len(jobs):
                time.sleep(interval)
                interval = min(max_interval, interval * 1.5)
        return done


def without_password(url: str) -> str:
    """A remote URL as sent to a server: never the password or token a user keeps in it (the server clones
    with credentials of its own); `user@` of ssh stays."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
