"""`git panini serve`: a worker that takes jobs over HTTP (POST /jobs) and runs them in clones it keeps."""

from __future__ import annotations

import os
import sys
import threading

import typer

from ..remote_work import serve as serve_mod
from ..remote_work.dispatch import parse_size
from ..remote_work.webhook import SECRET_ENV, TOKEN_ENV
from .common import fail

_print_lock = threading.Lock()


def _log(message: str):
    """One line per request or job event, whole even when threads log at once."""
    with _print_lock:
        sys.stdout.write(message.replace("\n", " ") + "\n")
        sys.stdout.flush()


def serve(listen: str = typer.Option(serve_mod.DEFAULT_LISTEN, "--listen", metavar="HOST:PORT",
                                     help="HOST:PORT to listen on "
                                          "(port 0: any free port; it is printed)."),
          workdir: str = typer.Option(None, "--workdir", metavar="DIR",
                                      help="Job records and the clones of the remotes "
                                           "(default: ~/.local/state/git-panini/serve)."),
          concurrency: int = typer.Option(1, "--concurrency", min=1, max=64,
                                          help="Jobs run at once; more wait as queued."),
          max_body: str = typer.Option("1MiB", "--max-body", metavar="SIZE",
                                       help="Largest request body (bigger: 413)."),
          token_env: str = typer.Option(TOKEN_ENV, "--token-env", metavar="NAME",
                                        help="Environment variable holding the bearer "
                                             f"token clients must send (the HMAC secret comes from ${SECRET_ENV})."),
          no_auth: bool = typer.Option(False, "--no-auth", help="No token (only when listening on loopback)."),
          effort: int = typer.Option(2, "--effort", min=0, max=3, help="Passed to `git panini work`."),
          allow_remote: list[str] = typer.Option(None, "--allow-remote", metavar="URL",
                                                 help="The only remote(s) jobs may name, repeatable (default: "
                                                      "any; set it wherever the token travels further than you)."),
          max_queued: int = typer.Option(serve_mod.DEFAULT_MAX_QUEUED, "--max-queued", metavar="N", min=1,
                                         help="Jobs that may wait for a slot; a POST over it gets 429 with "
                                              "Retry-After."),
          job_timeout: int = typer.Option(serve_mod.DEFAULT_JOB_TIMEOUT, "--job-timeout", metavar="SECONDS", min=1,
                                          help="Time a job may run (clone, fetches, worker); then its processes "
                                               "get SIGTERM, SIGKILL after min(60 s, SECONDS), its leases are "
                                               "released and it fails.")):
    """Take jobs over HTTP (POST /jobs, GET /jobs/ID, GET /healthz) and run `git panini work --job` for them."""
    try:
        host, _ = serve_mod.parse_listen(listen)
        limit = parse_size(max_body)
    except ValueError as e:
        fail(str(e), code=2)
    token = None
    if no_auth:
        if not serve_mod.is_loopback(host):
            fail(f"--no-auth is for loopback only; {host} is reachable from elsewhere: set ${token_env}", code=2)
    else:
        token = os.environ.get(token_env)
        if not token:
            fail(f"no token: set ${token_env} (clients send it as 'Authorization: Bearer ...'), "
                 "or --no-auth on 127.0.0.1", code=2)
    workdir = workdir or os.path.join(os.path.expanduser("~"), ".local", "state", "git-panini", "serve")
    try:
        serve_mod.serve(listen, workdir, concurrency, limit, token, os.environ.get(SECRET_ENV) or None, effort, _log,
                        tuple(allow_remote or ()), max_queued, job_timeout)
    except serve_mod.ServeError as e:
        fail(str(e))


def register(app: typer.Typer):
    app.command()(serve)
