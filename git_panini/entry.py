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
        sys.exit(hook_main(sys.argv[2], sys.argv[3:]))
    from .cli import main as cli_main
    cli_main()
