"""Error texts as a client of `git panini serve` may read them: one line, and no path of the server's machine.

Git's and Python's messages name the files they failed on (the workdir, a clone, a job record); a token holder
must not learn from them how the server's disk is laid out. Every absolute path in a text becomes `<path>`,
unless the client named it itself (a file:// remote), and so does anything under the server's own folders
(the workdir, the home folder, the temporary folder, Python's) wherever it starts a path, also in a file:// URL. The server's
log keeps the whole message.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

from ...util.errors import one_line

# An absolute path standing alone: after a space, a quote or a bracket, not inside a URL or a word.
ABSOLUTE = re.compile(r"(?<![\w.~:/\\-])/[^\s'\"`<>]+")
TRAILING = ".,:;)]}!?"
MAX_CHARS = 300


class Redactor:
    def __init__(self, *roots: str):
        found = {sys.prefix, sys.exec_prefix, os.path.expanduser("~"), tempfile.gettempdir()}
        for root in roots:
            found |= {os.path.abspath(root), os.path.realpath(root)}
        found = sorted((r.rstrip("/") for r in found if r and r.rstrip("/")), key=len, reverse=True)
        self._under = re.compile("|".join(r"(?<![\w.-])" + re.escape(r) + r"(?![\w.-])[^\s'\"`<>]*" for r in found))

    def __call__(self, text, keep: str = "") -> str:
        """text as one line, its server paths replaced; `keep` (the remote the client sent) may stay."""
        def hide(match: re.Match) -> str:
            path = match.group(0)
            tail = len(path) - len(path.rstrip(TRAILING))
            path, rest = path[:len(path) - tail], path[len(path) - tail:]
            return (path if path and keep and path.rstrip("/") in keep else "<path>") + rest

        text = one_line(text)
        text = self._under.sub(hide, text)
        text = ABSOLUTE.sub(hide, text)
        return text[:MAX_CHARS]
