"""The `git-panini` console script: the filter and the hooks start without loading the CLI (git starts them
on every command, so their start-up time is everyone's)."""

from __future__ import annotations

import sys


def main():
    if sys.argv[1:2] == ["filter-process"] and len(sys.argv) == 2:
        from .filter import main as filter_main
        filter_main()
        return
    if sys.argv[1:2] == ["hook"] and len(sys.argv) >= 3:
        from .hooks import main as hook_main
        sys.exit(one_line_errors(lambda: hook_main(sys.argv[2], sys.argv[3:])))
    from .cli import main as cli_main
    sys.exit(one_line_errors(cli_main))


def one_line_errors(run) -> int:
    """Run a command; what goes wrong in the store, a remote or git is one line and exit 1, no traceback."""
    import sqlite3

    from .reader import ReadError
    from .refchain import RefError
    from .remote import SyncError
    from .repo import GitError, ObjectTooLarge
    from .store import StoreError
    try:
        return run() or 0
    except (GitError, SyncError, StoreError, RefError, ObjectTooLarge, ReadError, sqlite3.DatabaseError,
            RuntimeError) as e:
        sys.stderr.write(f"git-panini: {e}\n")
        return 2 if isinstance(e, GitError) else 1
