"""--include / --exclude and panini.fetchinclude / fetchexclude match as .gitignore lines (and git-lfs's
fetchinclude) do; checked against git's own matcher (`git check-ignore`) on the same patterns and paths."""

import pytest

from conftest import git, make_repo
from git_panini.util.pathfilter import PathFilter, split_patterns

PATHS = ["a.psd", "d/e/x.psd", "assets/q.bin", "z/assets/q.bin", "data/a.png", "data/old/x.png", "top.bin",
         "z/top.bin", "deep/q/r/x.bin", "deep/x.bin", "other.txt"]
PATTERNS = ["*.psd", "assets", "data/*.png", "/top.bin", "deep/**/x.bin", "data/*"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_pattern_matches_what_git_would_ignore(tmp_path, pattern):
    repo = make_repo(tmp_path, install=False)
    (repo / ".gitignore").write_text(pattern + "\n")
    out = git(repo, "check-ignore", "--no-index", "--stdin", input="\n".join(PATHS).encode(), check=False).stdout
    by_git = set(out.split())
    assert {p for p in PATHS if PathFilter([pattern]).matches(p)} == by_git, pattern


def test_star_stays_within_a_directory():
    assert not PathFilter(["data/*.png"]).matches("data/old/x.png")   # fnmatch matched it
    assert PathFilter(["data/*.png"]).matches("data/a.png")


def test_exclude_wins_and_no_pattern_matches_everything():
    paths = PathFilter(["*.psd,assets"], ["assets/skip"])
    assert [p for p in ("x.psd", "assets/q", "assets/skip/w", "x.bin") if paths.matches(p)] == ["x.psd", "assets/q"]
    assert PathFilter().matches("anything/at/all") and PathFilter([""], [""]).matches("x")
    assert split_patterns(["*.png, *.so", "a"]) == ["*.png", "*.so", "a"]
