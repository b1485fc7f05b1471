"""Which tracked paths to download: --include / --exclude patterns, or panini.fetchinclude / fetchexclude.

Patterns are comma-separated and match as .gitignore lines do, as git-lfs's lfs.fetchinclude: `*` stays
within one directory (`data/*.png` is not `data/old/x.png`), `**` crosses them, a pattern without a slash
matches a name at any depth (`*.psd`, `assets` and everything under it), a leading `/` anchors at the top.
dulwich's gitignore matcher does the matching (fnmatch let `*` cross `/`).
"""

from __future__ import annotations


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
        self._include, self._exclude = _matcher(self.include), _matcher(self.exclude)

    @classmethod
    def from_config(cls, repo) -> "PathFilter":
        return cls([repo.config_get("panini.fetchinclude") or ""], [repo.config_get("panini.fetchexclude") or ""])

    def matches(self, path: str) -> bool:
        if self._include is not None and not self._include.is_ignored(path):
            return False
        return not (self._exclude is not None and self._exclude.is_ignored(path))


def _matcher(patterns: list[str]):
    """A gitignore matcher of the patterns (is_ignored: True when one matches), None for no pattern."""
    if not patterns:
        return None
    from dulwich.ignore import IgnoreFilter   # loaded only where patterns are set (20 ms on every start else)
    return IgnoreFilter([p.strip().encode() for p in patterns])
