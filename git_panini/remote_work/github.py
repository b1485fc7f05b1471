"""GitHub through PyGithub: workflow dispatches, commit statuses and one PR comment kept up to date.

Every failure becomes a GitHubError whose message is one line saying what was being done, what
GitHub answered (401, 403, 404, 422, rate limit, timeout, unreachable) and what to check.

Settings come from the standard Actions variables (GITHUB_API_URL, GITHUB_TOKEN, GITHUB_REPOSITORY)
unless given, and these knobs (the defaults suit github.com):
  GIT_PANINI_GITHUB_TIMEOUT         seconds per HTTP request (30)
  GIT_PANINI_GITHUB_RETRIES         retries of 5xx answers, timeouts and short rate-limit waits (3)
  GIT_PANINI_GITHUB_MAX_WAIT        longest rate-limit wait worth sleeping through, in seconds (60)
  GIT_PANINI_GITHUB_WRITE_INTERVAL  least seconds between two writes, as GitHub asks of integrations (1)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import github
import requests
from github import GithubException, GithubRetry

from ..util.errors import one_line

DEFAULT_API_URL = "https://api.github.com"
STATUS_DESCRIPTION_MAX = 140     # GitHub cuts commit status descriptions here
STATES = ("error", "failure", "pending", "success")


class GitHubError(Exception):
    """A GitHub call failed; the message is one line."""


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise GitHubError(f"{name} must be a number, not {os.environ.get(name)!r}") from None


@dataclass
class Settings:
    repository: str
    token: str
    api_url: str = DEFAULT_API_URL
    timeout: int = 30
    retries: int = 3
    max_wait: float = 60.0
    write_interval: float = 1.0

    @classmethod
    def from_env(cls, repository: str | None = None, token: str | None = None,
                 api_url: str | None = None) -> "Settings":
        repository = repository or os.environ.get("GITHUB_REPOSITORY", "")
        token = token or os.environ.get("GITHUB_TOKEN", "")
        api_url = api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
        if not token:
            raise GitHubError("no GitHub token: set GITHUB_TOKEN (in a workflow: env: GITHUB_TOKEN: "
                              "${{ github.token }}) or pass --token")
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise GitHubError("no GitHub repository (owner/name): set GITHUB_REPOSITORY or pass --repository"
                              + (f" (got {repository!r})" if repository else ""))
        return cls(repository, token, api_url.rstrip("/"),
                   timeout=max(1, round(_env_number("GIT_PANINI_GITHUB_TIMEOUT", 30))),   # PyGithub: whole seconds
                   retries=int(_env_number("GIT_PANINI_GITHUB_RETRIES", 3)),
                   max_wait=_env_number("GIT_PANINI_GITHUB_MAX_WAIT", 60.0),
                   write_interval=_env_number("GIT_PANINI_GITHUB_WRITE_INTERVAL", 1.0))


def _header(headers, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _rate_limit_wait(status: int, headers) -> float | None:
    """Seconds GitHub asks us to wait, when the answer is a rate limit (None otherwise)."""
    retry_after = _header(headers, "Retry-After")
    if status in (403, 429) and retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return None
    if status in (403, 429) and _header(headers, "X-RateLimit-Remaining") == "0":
        reset = _header(headers, "X-RateLimit-Reset")
        if reset and reset.isdigit():
            return max(0.0, int(reset) - time.time())
        return None
    return None


class _Retry(GithubRetry):
    """PyGithub's retry, except that a rate limit asking for a longer wait than max_rate_limit_wait
    fails at once instead of sleeping (GitHub's Retry-After and X-RateLimit-Reset both count)."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and self.max_rate_limit_wait is not None:
            wait = _rate_limit_wait(response.status, response.headers)
            if wait is not None and wait > self.max_rate_limit_wait:
                body = GithubRetry.get_content(response, url)
                raise github.RateLimitExceededException(response.status, _json_or_text(body),
                                                        dict(response.headers))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _json_or_text(body: bytes):
    import json
    try:
        return json.loads(body)
    except ValueError:
        return {"message": body.decode(errors="replace")[:200]}


def explain(error: Exception, what: str, settings: Settings | None = None, needs: str | None = None) -> str:
    """One line for a failed call: what we were doing, what GitHub said, what to check."""
    where = settings.api_url if settings else "GitHub"
    if isinstance(error, GithubException):
        status = error.status
        data = error.data if isinstance(error.data, dict) else {}
        message = data.get("message") or (error.data if isinstance(error.data, str) else "") or ""
        details = [e.get("message") or e.get("code") or "" if isinstance(e, dict) else str(e)
                   for e in (data.get("errors") or [])] if isinstance(data.get("errors"), list) else []
        said = f"{status}" + (f" {message}" if message else "") + (f": {'; '.join(d for d in details if d)}"
                                                                    if any(details) else "")
        wait = _rate_limit_wait(status or 0, error.headers)
        rate_limited = (isinstance(error, github.RateLimitExceededException) or status == 429 or wait is not None
                        or "rate limit" in str(message).lower())
        if rate_limited:
            reset = _header(error.headers, "X-RateLimit-Reset")
            if wait is not None and _header(error.headers, "Retry-After") is not None:
                when = f"retry after {wait:.0f} s"
            elif reset and reset.isdigit():
                when = "the limit resets at " + datetime.fromtimestamp(int(reset), timezone.utc).strftime(
                    "%H:%M:%S UTC")
            else:
                when = "retry later"
            return one_line(f"GitHub rate limit hit while {what} ({said}); {when}", 300)
        if status == 401:
            return one_line(f"GitHub rejected the token while {what} ({said}): check GITHUB_TOKEN or --token", 300)
        if status == 403:
            hint = f": the token needs {needs}" if needs else ": the token lacks a permission"
            return one_line(f"GitHub refused {what} ({said}){hint}", 300)
        if status == 404:
            repo = f" {settings.repository}" if settings else ""
            return one_line(f"GitHub found nothing while {what} ({said}): check that the repository{repo} "
                            "exists, the names are right and the token can see it", 300)
        if status == 422:
            return one_line(f"GitHub rejected {what} ({said})", 300)
        if status and status >= 500:
            return one_line(f"GitHub failed while {what} ({said}); try again later", 300)
        return one_line(f"GitHub call failed while {what} ({said})", 300)
    text = str(error)
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in text.lower():
        limit = f" within {settings.timeout:g} s" if settings else ""
        return one_line(f"GitHub did not answer{limit} while {what} ({where})", 300)
    if isinstance(error, requests.exceptions.RequestException):
        reason = getattr(error, "args", [None])[0]
        reason = getattr(reason, "reason", reason)
        return one_line(f"cannot reach GitHub at {where} while {what}: {reason}", 240)
    return one_line(f"GitHub call failed while {what}: {type(error).__name__}: {text}", 300)


class Client:
    """The few GitHub calls git-panini makes, through the real PyGithub client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        retry = _Retry(total=settings.retries, backoff_factor=0.5, raise_on_status=False,
                       max_rate_limit_wait=settings.max_wait,
                       secondary_rate_wait=min(60.0, settings.max_wait)) if settings.retries > 0 else None
        self._gh = github.Github(base_url=settings.api_url, auth=github.Auth.Token(settings.token),
                                 timeout=settings.timeout, retry=retry, lazy=True,
                                 seconds_between_requests=None,
                                 seconds_between_writes=settings.write_interval or None)
        self._repo = self._gh.get_repo(settings.repository)

    @classmethod
    def from_env(cls, repository: str | None = None, token: str | None = None, api_url: str | None = None):
        return cls(Settings.from_env(repository, token, api_url))

    def _call(self, what: str, fn, needs: str | None = None):
        try:
            return fn()
        except (GithubException, requests.exceptions.RequestException, OSError) as e:
            raise GitHubError(explain(e, what, self.settings, needs)) from None

    # --- the calls ------------------------------------------------------------------------------
    def dispatch_workflow(self, workflow: str, ref: str, inputs: dict[str, str]):
        """POST .../actions/workflows/{workflow}/dispatches (a workflow_dispatch event)."""
        what = f"dispatching workflow {workflow} on {ref}"
        self._call(what, lambda: self._repo.get_workflow(workflow).create_dispatch(ref, inputs, throw=True),
                   needs="`actions: write`")

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None = None):
        """POST .../statuses/{sha}."""
        if state not in STATES:
            raise ValueError(f"commit status state must be one of {STATES}")
        description = one_line(description, STATUS_DESCRIPTION_MAX)
        kwargs = {"target_url": target_url} if target_url else {}
        self._call(f"setting status {context} on {sha[:12]}",
                   lambda: self._repo.get_commit(sha).create_status(state, description=description,
                                                                   context=context, **kwargs),
                   needs="`statuses: write`")

    def upsert_comment(self, number: int, body: str, marker: str, author: str | None = None) -> tuple[str, int]:
        """Update our comment on issue/PR `number` (found by `marker` in its body) or create it.

        Only a comment by `author` (a login), or by a bot when no author is given, counts as ours, so a
        comment someone else wrote with the marker in it is never edited. Returns (action, comment id).
        """
        if marker not in body:
            body = f"{marker}\n{body}"
        issue = self._repo.get_issue(number)

        def find():
            for comment in issue.get_comments():
                user = comment.user
                mine = (user is not None and user.login == author) if author else \
                    (user is not None and (user.type == "Bot" or user.login.endswith("[bot]")))
                if mine and marker in (comment.body or ""):
                    return comment
            return None

        ours = self._call(f"listing the comments of #{number}", find, needs="`pull-requests: read`")
        if ours is not None:
            self._call(f"updating comment {ours.id} on #{number}", lambda: ours.edit(body),
                       needs="`pull-requests: write`")
            return "updated", ours.id
        created = self._call(f"commenting on #{number}", lambda: issue.create_comment(body),
                             needs="`pull-requests: write`")
        return "created", created.id


def run_url() -> str | None:
    """This workflow run's page, from the Actions variables (for a status's target_url)."""
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if server and repo and run else None


def event_pr_number() -> int | None:
    """The pull request number of the event that started this workflow run, if any."""
    import json
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            event = json.load(f)
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") or (
        event.get("issue", {}).get("number") if "pull_request" in event.get("issue", {}) else None)
    return number if isinstance(number, int) else None


def write_output(outputs: dict[str, str], path: str | None = None) -> str | None:
    """Append name=value lines to $GITHUB_OUTPUT (multi-line values in the heredoc form)."""
    path = path or os.environ.get("GITHUB_OUTPUT")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        for name, value in outputs.items():
            value = str(value)
            if "\n" in value:
                delimiter = f"ghadelimiter_{os.urandom(8).hex()}"
                f.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                f.write(f"{name}={value}\n")
    return path


def append_summary(markdown: str, path: str | None = None) -> str | None:
    """Append to $GITHUB_STEP_SUMMARY (the run's job summary page)."""
    path = path or os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path
