"""A real smart-HTTP Git server for tests: `git http-backend` run as a CGI behind python's http.server.

    from smart_http import http_remote            # importing the fixture makes it usable in the module

    def test_something(http_remote):
        bare, url = http_remote                    # a bare repository and its http://127.0.0.1:PORT/... URL
        ...
        http_remote.reset()                        # forget the requests recorded so far
        ...
        print(http_remote.upload_pack_posts())     # fetch round trips since the reset
        print(http_remote.bytes_received(), http_remote.bytes_sent())

or, outside pytest, `with serve_http_remote(tmp_dir) as remote: bare, url = remote`.

How it works. A ThreadingHTTPServer on 127.0.0.1 (a free port, one thread per connection, HTTP/1.1 with
keep-alive) answers every request by running `git http-backend` once, with the CGI environment that
git documents for it: GIT_PROJECT_ROOT (the folder holding the served bare repositories),
GIT_HTTP_EXPORT_ALL=1, PATH_INFO, QUERY_STRING, REQUEST_METHOD, CONTENT_TYPE, CONTENT_LENGTH,
REMOTE_ADDR, GIT_PROTOCOL (from the `Git-Protocol` request header, so protocol v2 is spoken exactly as
with a real server) and HTTP_CONTENT_ENCODING (git gzips large upload-pack requests; http-backend
inflates them itself). A request body sent with `Transfer-Encoding: chunked` (git does that for a POST
larger than http.postBuffer, i.e. any large push) is decoded here first, and its decoded length is
what CONTENT_LENGTH says. The body is spooled to a temporary file which is the CGI's stdin, so
neither side can block the other. The CGI's output is parsed (headers up to the blank line, the
`Status:` header giving the HTTP status, 200 when absent) and its body streamed back, with
`Transfer-Encoding: chunked` unless the CGI gave a Content-Length.

Every request is recorded (method, path, query, service, request and response body sizes, status,
the Git-Protocol header, the CGI's stderr), so a test can count fetch round trips (POSTs to
git-upload-pack) and the bytes moved on the wire.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# The configuration every test remote gets (served over HTTP or file://, so both transports behave alike).
BARE_CONFIG = {
    "http.receivepack": "true",
    "uploadpack.allowFilter": "true",
    "uploadpack.allowReachableSHA1InWant": "true",
    "uploadpack.allowAnySHA1InWant": "false",
}

# Variables of the test process that would send http-backend to another repository or configuration.
_CGI_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_CONFIG",
             "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
             "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_PROTOCOL", "GIT_QUARANTINE_PATH",
             "CONTENT_LENGTH", "CONTENT_TYPE", "QUERY_STRING", "PATH_INFO", "REQUEST_METHOD",
             "HTTP_CONTENT_ENCODING", "REMOTE_USER", "GIT_HTTP_EXPORT_ALL", "GIT_PROJECT_ROOT",
             "PATH_TRANSLATED")

_COPY = 1 << 16


def configure_bare(path, extra: dict[str, str] | None = None):
    """Give a bare repository the test remotes' configuration (BARE_CONFIG, then `extra`)."""
    for key, value in {**BARE_CONFIG, **(extra or {})}.items():
        subprocess.run(["git", "-C", str(path), "config", key, value], check=True, capture_output=True)


@dataclass
class Request:
    """One HTTP request the server answered."""
    method: str
    path: str                      # URL path, e.g. /remote.git/git-upload-pack
    query: str                     # e.g. service=git-upload-pack
    service: str | None            # git-upload-pack, git-receive-pack, or None (dumb-HTTP paths, errors)
    request_bytes: int = 0         # body bytes as sent on the wire (gzip-compressed if the client did so)
    request_decoded_bytes: int = 0  # body bytes after de-chunking (what the CGI's stdin got, still gzip'd)
    response_bytes: int = 0        # response body bytes sent back (CGI headers and chunk framing excluded)
    status: int = 0
    git_protocol: str = ""         # the Git-Protocol header (e.g. version=2)
    content_encoding: str = ""
    chunked: bool = False          # the request body came with Transfer-Encoding: chunked
    seconds: float = 0.0
    stderr: str = ""               # what git http-backend wrote on stderr

    @property
    def is_fetch_round_trip(self) -> bool:
        return self.method == "POST" and self.service == "git-upload-pack"


def _service_of(path: str, query: str) -> str | None:
    for name in ("git-upload-pack", "git-receive-pack", "git-upload-archive"):
        if path.endswith("/" + name):
            return name
    params = urllib.parse.parse_qs(query)
    if params.get("service"):
        return params["service"][0]
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as git's curl expects from a real server
    timeout = 120                     # a stuck connection dies instead of holding a thread forever
    server: "GitHttpServer"

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests read server.requests instead
        pass

    def do_GET(self):
        self._cgi()

    def do_POST(self):
        self._cgi()

    # --- the request body ------------------------------------------------------------------------
    def _read_exact(self, n: int, sink) -> int:
        got = 0
        while got < n:
            data = self.rfile.read(min(_COPY, n - got))
            if not data:
                raise ConnectionError(f"request body ended after {got} of {n} bytes")
            sink.write(data)
            got += len(data)
        return got

    def _read_chunked(self, sink) -> tuple[int, int]:
        """Decode a chunked body into sink; returns (wire bytes, decoded bytes)."""
        wire = decoded = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("chunked request body ended early")
            wire += len(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:                          # trailers, up to the blank line
                    trailer = self.rfile.readline(8192)
                    wire += len(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return wire, decoded
            self._read_exact(size, sink)
            wire += size
            decoded += size
            crlf = self.rfile.readline(8)
            wire += len(crlf)

    # --- the CGI ---------------------------------------------------------------------------------
    def _cgi(self):
        started = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        record = Request(method=self.command, path=path, query=url.query, service=_service_of(path, url.query),
                         git_protocol=self.headers.get("Git-Protocol", ""),
                         content_encoding=self.headers.get("Content-Encoding", ""))
        srv = self.server
        try:
            with tempfile.TemporaryFile(dir=srv.spool_dir) as body, tempfile.TemporaryFile(dir=srv.spool_dir) as err:
                if self.command == "POST":
                    if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                        record.chunked = True
                        record.request_bytes, record.request_decoded_bytes = self._read_chunked(body)
                    else:
                        n = int(self.headers.get("Content-Length") or 0)
                        record.request_bytes = record.request_decoded_bytes = self._read_exact(n, body)
                    body.seek(0)
                env = self._environment(path, url.query, record.request_decoded_bytes)
                proc = subprocess.Popen(["git", "http-backend"], stdin=body, stdout=subprocess.PIPE, stderr=err,
                                        env=env, cwd=srv.project_root)
                try:
                    record.status, record.response_bytes = self._relay(proc.stdout)
                finally:
                    proc.stdout.close()
                    proc.wait()
                err.seek(0)
                record.stderr = err.read().decode("utf-8", "replace")
        except (ConnectionError, BrokenPipeError, TimeoutError) as e:
            record.stderr += f"\n[smart_http] connection error: {e!r}"
            self.close_connection = True
        finally:
            record.seconds = time.monotonic() - started
            srv.record(record)

    def _environment(self, path: str, query: str, length: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CGI_DROP}
        env.update({
            "GIT_PROJECT_ROOT": str(self.server.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_SOFTWARE": "panini-test-smart-http",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        })
        if self.command == "POST":
            env["CONTENT_LENGTH"] = str(length)
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.server.max_request_buffer is not None:
            env["GIT_HTTP_MAX_REQUEST_BUFFER"] = str(self.server.max_request_buffer)
        return env

    def _relay(self, out) -> tuple[int, int]:
        """Parse the CGI's headers, send the response, stream its body; returns (status, body bytes)."""
        status, reason, headers = 200, "OK", []
        while True:
            line = out.readline(65536)
            if not line:                      # the CGI died before finishing its headers
                status, reason, headers = 502, "Bad Gateway", []
                break
            line = line.rstrip(b"\r\n").decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "status":
                code, _, text = value.partition(" ")
                status, reason = int(code), text or reason
            else:
                headers.append((name, value))
        self.send_response(status, reason)
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        for name, value in headers:
            if name.lower() not in ("connection", "transfer-encoding"):
                self.send_header(name, value)
        chunked = length is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        while data := out.read1(_COPY):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            sent += len(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        if status >= 400 or (length is not None and int(length) != sent):
            self.close_connection = True
        return status, sent


class GitHttpServer(ThreadingHTTPServer):
    """Serves every bare repository under project_root at http://127.0.0.1:<port>/<name>."""

    daemon_threads = True

    def __init__(self, project_root, max_request_buffer: int | None = None):
        self.project_root = Path(project_root).resolve()
        self.spool_dir = tempfile.mkdtemp(prefix="smart-http-spool-")
        self.max_request_buffer = max_request_buffer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url_of(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def record(self, request: Request):
        with self._lock:
            self.requests.append(request)

    def start(self) -> "GitHttpServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"smart-http:{self.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)


@dataclass
class HttpRemote:
    """A bare repository served over smart HTTP; unpacks as (bare_path, url)."""
    bare: Path
    url: str
    server: GitHttpServer
    _mark: int = field(default=0)

    def __iter__(self):
        return iter((self.bare, self.url))

    # --- what the server saw ---------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        """Requests since the last reset() (a copy: safe to read while git is still talking)."""
        with self.server._lock:
            return list(self.server.requests[self._mark:])

    def reset(self):
        with self.server._lock:
            self._mark = len(self.server.requests)

    def upload_pack_posts(self) -> int:
        """Fetch round trips: POSTs to git-upload-pack (ls-refs and fetch commands under protocol v2)."""
        return sum(r.is_fetch_round_trip for r in self.requests)

    def receive_pack_posts(self) -> int:
        return sum(r.method == "POST" and r.service == "git-receive-pack" for r in self.requests)

    def bytes_sent(self, service: str | None = None) -> int:
        """Response body bytes the server sent (to fetches, pushes, or everything)."""
        return sum(r.response_bytes for r in self.requests if service is None or r.service == service)

    def bytes_received(self, service: str | None = None) -> int:
        """Request body bytes the server received on the wire."""
        return sum(r.request_bytes for r in self.requests if service is None or r.service == service)

    def errors(self) -> list[Request]:
        return [r for r in self.requests if r.status >= 400 or r.status == 0]

    def summary(self) -> str:
        reqs = self.requests
        return (f"{len(reqs)} request(s): {self.upload_pack_posts()} upload-pack POST(s), "
                f"{self.receive_pack_posts()} receive-pack POST(s); "
                f"{self.bytes_received()} bytes in, {self.bytes_sent()} bytes out")


@contextlib.contextmanager
def serve_http_remote(tmp, name: str = "remote.git", object_format: str = "sha1",
                      config: dict[str, str] | None = None, max_request_buffer: int | None = None):
    """A new bare repository at <tmp>/http/<name>, served over smart HTTP while the block runs."""
    root = Path(tmp) / "http"
    root.mkdir(parents=True, exist_ok=True)
    bare = root / name
    subprocess.run(["git", "init", "-q", "--bare", f"--object-format={object_format}", str(bare)],
                   check=True, capture_output=True)
    configure_bare(bare, config)
    server = GitHttpServer(root, max_request_buffer=max_request_buffer).start()
    try:
        yield HttpRemote(bare=bare, url=server.url_of(name), server=server)
    finally:
        server.stop()


@pytest.fixture
def http_remote(tmp_path):
    """(bare_path, url) of a bare repository served over smart HTTP for this test; see HttpRemote."""
    with serve_http_remote(tmp_path) as remote:
        yield remote
