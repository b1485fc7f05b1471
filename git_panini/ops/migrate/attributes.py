"""The patterns: as the .gitattributes lines migrate writes or removes, and as git matches them to paths."""

from __future__ import annotations

import os
import subprocess
import tempfile

from .errors import MigrateError

ATTRS = "filter=panini diff=panini merge=panini -text"  # as `git panini track` writes them
EXCLUDED_ATTRS = "!filter !diff !merge !text"   # an excluded pattern: back to what git does by default
OLD_EXCLUDED_ATTRS = "!filter !diff !text"       # as 0.1 wrote them


def split_attribute_lines(text: str) -> list[str]:
    """A .gitattributes file's lines as git reads them: split at "\n" only (str.splitlines also splits at
    \x0b, \x0c and \x1c-\x1e, making two live lines of one that git reads as one), a CR before it dropped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def quote_pattern(pattern: str) -> str:
    # .gitattributes patterns cannot contain raw blanks: git uses [[:space:]] for them.
    return pattern.replace(" ", "[[:space:]]").replace("\t", "[[:space:]]")


def check_patterns(patterns: list[str]):
    """One line of .gitattributes per pattern: an empty or multi-line one would write others into history."""
    for pattern in patterns:
        if not pattern.strip() or "\n" in pattern or "\r" in pattern:
            raise MigrateError(f"not a pattern: {pattern!r}", usage=True)


def attribute_lines(include: list[str], exclude: list[str]) -> list[str]:
    """The .gitattributes lines that make git route the selected paths through the panini filter."""
    return ([f"{quote_pattern(p)} {ATTRS}" for p in include]
            + [f"{quote_pattern(p)} {EXCLUDED_ATTRS}" for p in exclude])


def relative_pattern(pattern: str, folder: str) -> str | None:
    """The pattern, as written in `folder/.gitattributes`, that matches what `pattern` matches at the top
    under folder; None when it cannot match there. A pattern without a slash (or starting `**/`) matches
    at every depth, one anchored at the top must start with the folder."""
    if "/" not in pattern.rstrip("/") or pattern.startswith("**/"):
        return pattern
    anchored = pattern.lstrip("/")
    if anchored.startswith(folder + "/"):
        return anchored[len(folder) + 1:]
    if anchored.endswith("/**") and (folder + "/").startswith(anchored[:-2]):
        return "**"     # everything below a folder above this one
    return None


def sets_filter(line: str) -> bool:
    """Whether a .gitattributes line sets a filter other than panini's (git-lfs's, say)."""
    return any(a.startswith("filter=") and a != "filter=panini" for a in line.split()[1:])


def tracked_patterns(repo) -> list[str]:
    """The patterns HEAD's .gitattributes routes through the panini filter."""
    proc = repo.git("cat-file", "blob", "HEAD:.gitattributes", check=False)
    return [line.split()[0] for line in proc.stdout.decode(errors="replace").splitlines()
            if line.split() and "filter=panini" in line.split()[1:]]


# --- selecting paths ---------------------------------------------------------------------------------

class PatternMatcher:
    """Which include pattern selects a path (gitattributes semantics, decided by git itself): the patterns
    become a private attribute in a temporary attributes file, asked through one `git check-attr --stdin`."""

    ATTR = "panini-migrate-pattern"

    def __init__(self, repo, include: list[str], exclude: list[str]):
        fd, self._file = tempfile.mkstemp(prefix="panini-migrate-", suffix=".attributes")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for i, pattern in enumerate(include):
                f.write(f"{quote_pattern(pattern)} {self.ATTR}={i}\n")
            for pattern in exclude:
                f.write(f"{quote_pattern(pattern)} -{self.ATTR}\n")
        self._proc = subprocess.Popen(
            ["git", "--git-dir", repo.git_dir, "-c", f"core.attributesFile={self._file}",
             "check-attr", "-z", "--stdin", self.ATTR],
            cwd=repo.work_tree or repo.git_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "GIT_FLUSH": "1"})
        self._cache: dict[str, int | None] = {}

    def match(self, path: str) -> int | None:
        """The index of the include pattern that selects path, or None."""
        if path in self._cache:
            return self._cache[path]
        self._proc.stdin.write(path.encode("utf-8", "surrogateescape") + b"\0")
        self._proc.stdin.flush()
        fields = [self._read_field() for _ in range(3)]   # path, attribute, value
        value = fields[2]
        found = int(value) if value.isdigit() else None
        self._cache[path] = found
        return found

    def _read_field(self) -> str:
        out = bytearray()
        while (byte := self._proc.stdout.read(1)) not in (b"\0", b""):
            out += byte
        return out.decode("utf-8", "surrogateescape")

    def close(self):
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait()
        os.unlink(self._file)
