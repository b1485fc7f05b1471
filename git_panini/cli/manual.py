"""The man page's place: `man` looks in <bin>/../share/man next to each PATH entry, so `git panini --help`
(Git runs `man git-panini`) finds a page installed beside the console script."""

from __future__ import annotations

import os
import shutil
import sys

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "man", "git-panini.1")


def ensure_installed() -> str | None:
    """Copy the page beside the console script when a wheel install did not put it there (editable installs
    skip data files); returns where it is, or None where that folder is not ours to write."""
    target_dir = os.path.join(sys.prefix, "share", "man", "man1")
    target = os.path.join(target_dir, "git-panini.1")
    try:
        with open(PAGE, "rb") as ours, open(target, "rb") as theirs:
            if ours.read() == theirs.read():
                return target
    except FileNotFoundError:
        pass
    try:
        os.makedirs(target_dir, exist_ok=True)
        shutil.copyfile(PAGE, target)
    except OSError:
        return None
    return target
