"""The webhook worker behind `git panini serve`: jobs posted over HTTP, each run as `git panini work --job` in a
clone kept here.

Modules: book (the job records on disk and the bound on waiting jobs), supervisor (the jobs' processes: process
groups, deadlines, SIGTERM then SIGKILL, the stop), runner (one job: clone, fetch, notes, worker, time limit),
redact (error texts without the server's paths), app (HTTP: routes, authentication, limits, JSON answers),
server (`serve()`: lock, resume, waitress, stop).
"""

from .app import DEFAULT_MAX_QUEUED
from .runner import DEFAULT_JOB_TIMEOUT
from .server import DEFAULT_LISTEN, DEFAULT_MAX_BODY, ServeError, is_loopback, parse_listen, serve

__all__ = ["DEFAULT_JOB_TIMEOUT", "DEFAULT_LISTEN", "DEFAULT_MAX_BODY", "DEFAULT_MAX_QUEUED", "ServeError",
           "is_loopback", "parse_listen", "serve"]
