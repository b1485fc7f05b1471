"""What a user sees when something goes wrong, in one home: one line, on stderr, after `git-panini: `.
(The console script turns errors into such lines and logs the rest: entry.py; the CLI's own: cli.common.fail.)"""

from __future__ import annotations

import sys


def one_line(text, limit: int | None = None) -> str:
    """Any text as one line (newlines and runs of spaces folded), cut at `limit` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def warn(message: str, exc: BaseException | None = None, record: bool = False):
    """One line on stderr; record: also in .git/panini/logs/ with the traceback of `exc` (git hides what a
    filter prints among its own output, so a filter records what it says)."""
    if record:
        from . import logs
        logs.record(message, exc)
    sys.stderr.write(f"git-panini: {message}\n")
    sys.stderr.flush()
