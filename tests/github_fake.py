"""A local fake of the GitHub REST API, for driving the real PyGithub client in tests.

It speaks the calls git-panini makes: workflow dispatches, commit statuses, and issue/PR comments
(list with pagination, create, update); it records every request, validates like GitHub does
(token, permissions, workflow inputs, refs, status states) and can be told to fail: any status with
any body and headers (401, 403, 404, 422, rate limits with their headers), or to answer too late.

    with FakeGitHub() as gh:
        env = gh.env()          # GITHUB_API_URL, GITHUB_TOKEN, GITHUB_REPOSITORY for the client
        gh.fail("POST", r"/dispatches$", 422, {"message": "Unexpected inputs provided: [\"x\"]"})
        ...
        assert gh.requests[-1].path.endswith("/dispatches")

A plain http.server on 127.0.0.1 with an ephemeral port, served from a thread.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DOCS = "https://docs.github.com/rest"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object

    @property
    def auth(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    body: object
    headers: dict
    delay: float
    times: int | None       # None: every time
    skip: int = 0           # let this many matching requests through first


@dataclass
class Workflow:
    id: int
    path: str
    inputs: dict = field(default_factory=dict)   # name -> required (bool)


class FakeGitHub:
    def __init__(self, repository: str = "octo/panini-demo", token: str = "ghs_test_token",
                 refs: tuple[str, ...] = ("main",), per_page_max: int = 100):
        self.repository = repository
        self.token = token
        self.refs = set(refs)
        self.per_page_max = per_page_max
        self.permissions = {"actions": "write", "statuses": "write", "pull_requests": "write",
                            "issues": "write", "contents": "write"}
        self.workflows: dict[str, Workflow] = {}
        self.add_workflow("panini-worker.yml", {"jobs": True, "runner": False, "device": False})
        self.dispatches: list[dict] = []
        self.statuses: list[dict] = []
        self.comments: dict[int, list[dict]] = {}
        self.requests: list[Request] = []
        self.bot = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = iter(range(1000, 10 ** 9))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up ---------------------------------------------------------------------------------
    def add_workflow(self, path: str, inputs: dict[str, bool]) -> Workflow:
        wf = Workflow(2000 + len(self.workflows), path, dict(inputs))
        self.workflows[path] = wf
        return wf

    def add_comment(self, number: int, body: str, user: dict | None = None) -> dict:
        with self._lock:
            return self._new_comment(number, body, user or self.bot)

    def fail(self, method: str, pattern: str, status: int, body=None, headers: dict | None = None,
             delay: float = 0.0, times: int | None = 1, skip: int = 0):
        """After `skip` of them, the next `times` requests matching method and path regex get this answer
        (after `delay` seconds)."""
        self._faults.append(Fault(method.upper(), pattern, status, body if body is not None else {"message": "boom"},
                                  dict(headers or {}), delay, times, skip))

    def delay(self, method: str, pattern: str, seconds: float, times: int | None = 1):
        """Answer normally, but only after `seconds` (a client with a shorter timeout gives up)."""
        self._faults.append(Fault(method.upper(), pattern, 0, None, {}, seconds, times))

    def rate_limit(self, method: str, pattern: str, kind: str = "primary", wait: int = 3600, times: int | None = 1):
        """GitHub's two rate-limit answers: primary (403, X-RateLimit-Remaining: 0, X-RateLimit-Reset)
        and secondary (429 with Retry-After)."""
        if kind == "primary":
            reset = int(time.time()) + wait
            self.fail(method, pattern, 403, {"message": "API rate limit exceeded for installation ID 4242.",
                                             "documentation_url": DOCS + "/rate-limit"},
                      {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000",
                       "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core"}, times=times)
        else:
            self.fail(method, pattern, 429, {"message": "You have exceeded a secondary rate limit. Please wait a "
                                                        "few minutes before you try again.",
                                             "documentation_url": DOCS + "/rate-limit"},
                      {"Retry-After": str(wait)}, times=times)

    # --- life -----------------------------------------------------------------------------------
    def start(self) -> "FakeGitHub":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self, token: str | None = None) -> dict[str, str]:
        """The Actions variables the client reads, plus small timeouts and no throttling for tests."""
        return {"GITHUB_API_URL": self.url, "GITHUB_TOKEN": token or self.token,
                "GITHUB_REPOSITORY": self.repository, "GIT_PANINI_GITHUB_TIMEOUT": "1",
                "GIT_PANINI_GITHUB_RETRIES": "0", "GIT_PANINI_GITHUB_WRITE_INTERVAL": "0",
                "GIT_PANINI_GITHUB_MAX_WAIT": "5"}

    # --- queries for assertions ------------------------------------------------------------------
    def calls(self, method: str | None = None, pattern: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and re.search(pattern, r.path)]

    def status_of(self, sha: str, context: str) -> dict | None:
        found = [s for s in self.statuses if s["sha"] == sha and s["context"] == context]
        return found[-1] if found else None

    # --- serving ----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler):
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(h.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(request)
            fault = self._take_fault(request)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            return self._send(h, fault.status, fault.body, fault.headers)
        if request.auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return self._send(h, 401, {"message": "Bad credentials", "documentation_url": DOCS})
        with self._lock:
            status, payload, headers = self._route(request)
        self._send(h, status, payload, headers)

    def _take_fault(self, request: Request) -> Fault | None:
        for fault in self._faults:
            if fault.method in (request.method, "*") and re.search(fault.pattern, request.path):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _send(self, h, status: int, payload, headers: dict | None = None):
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass   # the client gave up (a timeout test)

    def _route(self, r: Request):
        base = f"/repos/{self.repository}"
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", r.path)
        if not m or m.group(1) != self.repository:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        rest = m.group(2) or ""
        routes = [
            ("GET", r"", self._get_repo),
            ("GET", r"/actions/workflows/([^/]+)", self._get_workflow),
            ("POST", r"/actions/workflows/([^/]+)/dispatches", self._dispatch),
            ("POST", r"/statuses/([0-9a-fA-F]{7,64})", self._create_status),
            ("GET", r"/commits/([^/]+)/statuses", self._list_statuses),
            ("GET", r"/commits/([^/]+)", self._get_commit),
            ("GET", r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r"/issues/comments/(\d+)", self._edit_comment),
            ("GET", r"/issues/comments/(\d+)", self._get_comment),
            ("GET", r"/issues/(\d+)", self._get_issue),
        ]
        for method, pattern, fn in routes:
            mm = re.fullmatch(pattern, rest)
            if mm and method == r.method:
                return fn(r, base, *mm.groups())
        return 404, {"message": "Not Found", "documentation_url": DOCS}, {}

    def _forbidden(self, permission: str):
        if self.permissions.get(permission) != "write":
            return 403, {"message": "Resource not accessible by integration", "documentation_url": DOCS}, {}
        return None

    def _get_repo(self, r, base):
        return 200, {"id": 1, "name": self.repository.split("/")[1], "full_name": self.repository,
                     "url": self.url + base, "default_branch": "main"}, {}

    def _workflow_json(self, base, wf: Workflow):
        return {"id": wf.id, "name": wf.path, "path": f".github/workflows/{wf.path}", "state": "active",
                "url": f"{self.url}{base}/actions/workflows/{wf.id}"}

    def _find_workflow(self, key: str) -> Workflow | None:
        for wf in self.workflows.values():
            if key in (wf.path, str(wf.id)):
                return wf
        return None

    def _get_workflow(self, r, base, key):
        wf = self._find_workflow(key)
        if wf is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        return 200, self._workflow_json(base, wf), {}

    def _dispatch(self, r, base, key):
        denied = self._forbidden("actions")
        if denied:
            return denied
        wf = self._find_workflow(key)
        if wf is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        body = r.body if isinstance(r.body, dict) else {}
        ref = body.get("ref")
        if not isinstance(ref, str) or ref.removeprefix("refs/heads/").removeprefix("refs/tags/") not in self.refs:
            return 422, {"message": f"No ref found for: {ref}", "documentation_url": DOCS}, {}
        inputs = body.get("inputs") or {}
        unexpected = sorted(set(inputs) - set(wf.inputs))
        if unexpected:
            return 422, {"message": f"Unexpected inputs provided: {json.dumps(unexpected)}",
                         "documentation_url": DOCS}, {}
        for name, required in wf.inputs.items():
            if required and name not in inputs:
                return 422, {"message": f"Required input '{name}' not provided", "documentation_url": DOCS}, {}
        if not all(isinstance(v, str) for v in inputs.values()):
            return 422, {"message": "inputs must be strings", "documentation_url": DOCS}, {}
        self.dispatches.append({"workflow": wf.path, "ref": ref, "inputs": dict(inputs)})
        return 204, None, {}

    def _create_status(self, r, base, sha):
        denied = self._forbidden("statuses")
        if denied:
            return denied
        body = r.body if isinstance(r.body, dict) else {}
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "Status", "field": "state", "code": "custom",
                 "message": "state is not included in the list"}], "documentation_url": DOCS}, {}
        status = {"id": next(self._ids), "sha": sha, "state": body["state"], "context": body.get("context", "default"),
                  "description": body.get("description"), "target_url": body.get("target_url"),
                  "url": f"{self.url}{base}/statuses/{sha}", "creator": self.bot,
                  "created_at": "2026-11-21T00:00:00Z", "updated_at": "2026-11-21T00:00:00Z"}
        self.statuses.append(status)
        return 201, status, {}

    def _list_statuses(self, r, base, sha):
        return 200, [s for s in reversed(self.statuses) if s["sha"] == sha], {}

    def _get_commit(self, r, base, sha):
        return 200, {"sha": sha, "url": f"{self.url}{base}/commits/{sha}"}, {}

    def _new_comment(self, number: int, body: str, user: dict) -> dict:
        cid = next(self._ids)
        base = f"/repos/{self.repository}"
        comment = {"id": cid, "node_id": f"IC_{cid}", "body": body, "user": dict(user),
                   "url": f"{self.url}{base}/issues/comments/{cid}",
                   "html_url": f"https://github.invalid/{self.repository}/pull/{number}#issuecomment-{cid}",
                   "issue_url": f"{self.url}{base}/issues/{number}",
                   "created_at": "2026-11-21T00:00:00Z", "updated_at": "2026-11-21T00:00:00Z"}
        self.comments.setdefault(number, []).append(comment)
        return comment

    def _list_comments(self, r, base, number):
        comments = self.comments.get(int(number), [])
        per_page = min(int(r.query.get("per_page", 30)), self.per_page_max)
        page = int(r.query.get("page", 1))
        chunk = comments[(page - 1) * per_page: page * per_page]
        headers = {}
        last = max(1, -(-len(comments) // per_page))
        if page < last:
            link = f"{self.url}{base}/issues/{number}/comments?per_page={per_page}&page="
            headers["Link"] = f'<{link}{page + 1}>; rel="next", <{link}{last}>; rel="last"'
        return 200, chunk, headers

    def _create_comment(self, r, base, number):
        denied = self._forbidden("pull_requests")
        if denied:
            return denied
        body = (r.body or {}).get("body") if isinstance(r.body, dict) else None
        if not body:
            return 422, {"message": "Validation Failed",
                         "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]}, {}
        return 201, self._new_comment(int(number), body, self.bot), {}

    def _comment(self, cid: int) -> dict | None:
        for comments in self.comments.values():
            for c in comments:
                if c["id"] == cid:
                    return c
        return None

    def _edit_comment(self, r, base, cid):
        denied = self._forbidden("pull_requests")
        if denied:
            return denied
        comment = self._comment(int(cid))
        if comment is None:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        body = (r.body or {}).get("body") if isinstance(r.body, dict) else None
        if not body:
            return 422, {"message": "Validation Failed"}, {}
        comment["body"] = body
        comment["updated_at"] = "2026-11-21T00:00:01Z"
        return 200, comment, {}

    def _get_comment(self, r, base, cid):
        comment = self._comment(int(cid))
        return (200, comment, {}) if comment else (404, {"message": "Not Found"}, {})

    def _get_issue(self, r, base, number):
        return 200, {"number": int(number), "url": f"{self.url}{base}/issues/{number}",
                     "pull_request": {"url": f"{self.url}{base}/pulls/{number}"}}, {}
