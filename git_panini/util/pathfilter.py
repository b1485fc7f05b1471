"""Which tracked paths to download: --include / --exclude patterns, or panini.fetchinclude / fetchexclude.

Patterns are comma-separated, as git-lfs's lfs.fetchinclude: a glob matches the whole path
(`*.psd`, `data/*`), and a plain directory name matches everything under it (`assets`).
"""

from __future__ import annotations

from fnmatch import fnmatchcase


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


class PathFilter:
    def __init__(self, include: list[str] | None = None, exclude: list[str] | None = None):
        self.include = [p for v in include or [] for p in _split(v)]
        self.exclude = [p for v in exclude or [] for p in _split(v)]

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
