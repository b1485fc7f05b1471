"""Which tracked paths to download: --include / --exclude patterns, or panini.fetchinclude / fetchexclude.

Patterns are comma-separated, as git-lfs's lfs.fetchinclude: a glob matches the whole path
(`*.psd`, `data/*`), and a plain directory name matches everything under it (`assets`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase


def split_patterns(values: list[str] | None) -> list[str]:
    """The patterns of repeated --include/--exclude values, each a comma-separated list as git-lfs takes
    them (`-I "*.png,*.so"`): the one parser every command's -I and -X go through. A value with no pattern
    in it stays as given, for a command that needs patterns to refuse it."""
    out = []
    for value in values or []:
        out += [p.strip() for p in value.split(",") if p.strip()] or [value]
    return out


class PathFilter:
    def __init__(self, include: list[str] | None = None, exclude: list[str] | None = None):
        self.include = [p for p in split_patterns(include) if p.strip()]
        self.exclude = [p for p in split_patterns(exclude) if p.strip()]

    @classmethod
    def from_config(cls, repo) -> "PathFilter":
        return cls([repo.config_get("panini.fetchinclude") or ""], [repo.config_get("panini.fetchexclude") or ""])

    def matches(self, path: str) -> bool:
        if self.include and not any(_match(path, p) for p in self.include):
            return False
        return not any(_match(path, p) for p in self.exclude)


def _match(path: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    return fnmatchcase(path, pattern) or path.startswith(pattern + "/")
