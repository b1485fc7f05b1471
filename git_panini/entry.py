"""The `git-panini` console script: the filter starts without loading the CLI (git starts it per command)."""

from __future__ import annotations

import sys


def main():
    if sys.argv[1:2] == ["filter-process"] and len(sys.argv) == 2:
        from .filter import main as filter_main
        filter_main()
        return
    from .cli import main as cli_main
    cli_main()
