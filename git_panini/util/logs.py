"""Error logs: what went wrong in the filter, a hook or a command, in full, under .git/panini/logs/.

The user sees one line; the traceback and the command line go here (`git panini logs last`), as git-lfs
keeps .git/lfs/logs. One file per error, named by time, so concurrent processes never share a file."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import traceback

KEEP = 100  # the newest logs kept; older ones are removed when a new one is written


def log_dir(git_dir: str | None = None) -> str | None:
    if git_dir is None:
        proc = subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True, text=True)
        if proc.returncode != 0:
            return None
        git_dir = os.path.abspath(proc.stdout.strip())
    return os.path.join(git_dir, "panini", "logs")


def record(message: str, exc: BaseException | None = None, git_dir: str | None = None,
           details: list[str] | None = None) -> str | None:
    """Write one log (details: lines after the message); returns its path, or None outside a repository or
    where it cannot be written."""
    directory = log_dir(git_dir)
    if directory is None:
        return None
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"time: {now.isoformat()}", f"command: {' '.join(sys.argv)}", f"pid: {os.getpid()}",
             f"error: {message}"]
    if details:
        lines += ["", *details]
    if exc is not None and exc.__traceback__ is not None:
        lines += ["", *traceback.format_exception(type(exc), exc, exc.__traceback__)]
    path = os.path.join(directory, f"{now:%Y%m%dT%H%M%S.%f}-{os.getpid()}.log")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write("\n".join(line.rstrip("\n") for line in lines) + "\n")
        for old in names(directory)[:-KEEP]:
            os.unlink(os.path.join(directory, old))
    except OSError:
        return None
    return path


def names(directory: str) -> list[str]:
    """Log file names, oldest first."""
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(".log"))
    except FileNotFoundError:
        return []
