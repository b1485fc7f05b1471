"""How Git runs this installation of git-panini: the filter, the diff and merge drivers and the hooks name it
by absolute path, so they keep working when its virtual environment is not on PATH."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

SCRIPT = "git-panini"


def installed_script() -> str | None:
    """The console script beside this interpreter (a venv's or a user install's bin/Scripts), else the one
    on PATH; None when neither exists (run from a source tree)."""
    here = os.path.dirname(os.path.abspath(sys.executable))
    for name in (SCRIPT, SCRIPT + ".exe"):
        path = os.path.join(here, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(SCRIPT)
    return os.path.abspath(found) if found else None


def command() -> str:
    """The command, shell-quoted for git config and hook scripts (Git runs both through sh)."""
    script = installed_script()
    return shlex.quote(script) if script else SCRIPT
