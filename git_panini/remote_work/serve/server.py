"""`git panini serve`: the server's life. It takes the workdir's lock, loads the job book, resumes what a stop
or a crash left queued or running, serves HTTP with waitress until SIGTERM or SIGINT, then ends the running
jobs (their leases go back) and returns.
"""

from __future__ import annotations

import ipaddress
import os
import signal

from ..webhook import SECRET_ENV, TOKEN_ENV
from .app import DEFAULT_MAX_QUEUED, WebhookApp
from .book import JobBook
from .runner import DEFAULT_JOB_TIMEOUT, JobRunner
from .supervisor import end_orphan

DEFAULT_LISTEN = "127.0.0.1:8765"
DEFAULT_MAX_BODY = 1 << 20
WSGI_THREADS = 4           # requests answered at once (jobs run in their own pool)


class ServeError(Exception):
    """The server cannot start; one line."""


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


def serve(listen: str, workdir: str, concurrency: int = 1, max_body: int = DEFAULT_MAX_BODY,
          token: str | None = None, secret: str | None = None, effort: int = 2, log=print,
          allowed: tuple[str, ...] = (), max_queued: int = DEFAULT_MAX_QUEUED,
          job_timeout: float = DEFAULT_JOB_TIMEOUT) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting, end the running jobs (their leases go back)
    and return. token None: no authentication (the caller allows that on loopback only). allowed: the
    only remotes jobs may name (a holder of the token could otherwise make this machine's credentials
    fetch from, and push to, any host). max_queued: jobs that may wait (one more gets 429); job_timeout:
    seconds a job may run before its processes are ended and it fails."""
    from filelock import FileLock, Timeout
    from waitress import create_server
    host, port = parse_listen(listen)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    lock = FileLock(os.path.join(workdir, "serve.lock"))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise ServeError(f"another git panini serve uses {workdir}") from None
    book = JobBook(os.path.join(workdir, "jobs"))
    # The workers need no webhook credentials: they push with the remote's own.
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, SECRET_ENV)} | {"GIT_TERMINAL_PROMPT": "0"}
    runner = JobRunner(book, workdir, concurrency, effort, env, log, job_timeout)
    app = WebhookApp(book, runner, token, secret, max_body, log, allowed, max_queued)
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
        f"(workdir {workdir}, {concurrency} job(s) at once, up to {max_queued} waiting, {job_timeout:g} s each, "
        f"{'no authentication' if token is None else 'bearer token' + (' and signature' if secret else '')})")
    try:
        for job in book.unfinished():
            end_orphan(book.get(job), log)
            book.update(job, state="queued", progress={"phase": "queued"}, worker_pid=None, worker_started=None)
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
        lock.release()
