"""Ref names a collaborator with ordinary push access chooses (DESIGN.md §4: bad input never blocks other
users). Git resolves a full ref name it does not find as a short one: `refs/panini/local` absent, it takes
`refs/tags/refs/panini/local`, a tag anyone may push and every clone fetches. Each attack is pushed for real
(file:// and smart HTTP) and each test ends with `gc --prune=now` and a fresh clone that reads every file."""

from __future__ import annotations

import pytest
from conftest import clone, git, make_bare, make_repo, run, sha256_file, write_random
from smart_http import serve_http_remote


def _gc(*paths):
    for path in paths:
        git(path, "reflog", "expire", "--expire=now", "--all")
        git(path, "gc", "-q", "--prune=now")


def _shared(tmp_path, url):
    """An honest clone that pushed a.bin, and an attacker's plain clone (plumbing only)."""
    honest = make_repo(tmp_path, name="honest", track=("*.bin",))
    git(honest, "remote", "add", "origin", url)
    write_random(honest / "a.bin", 300_000, seed=1)
    git(honest, "add", ".")
    git(honest, "commit", "-q", "-m", "a")
    git(honest, "push", "-q", "origin", "main")
    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", "--no-checkout", url, str(attacker))
    return honest, attacker


def _push_tags(attacker, names) -> str:
    """Tags at a commit of an empty tree, named after refs a fresh clone does not have yet."""
    empty = git(attacker, "mktree", input="").stdout.strip()
    commit = git(attacker, "commit-tree", "-m", "hostile", empty).stdout.strip()
    git(attacker, "push", "-q", "origin", *(f"{commit}:refs/tags/{name}" for name in names))
    return commit


def _victim_commits(tmp_path, url, honest):
    """A fresh clone reads a.bin, then adds and commits b.bin."""
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    victim = tmp_path / "victim"
    cloned = clone(url, victim, check=False)
    assert cloned.returncode == 0, cloned.stderr
    assert sha256_file(victim / "a.bin") == sha256_file(honest / "a.bin")
    write_random(victim / "b.bin", 200_000, seed=2)
    git(victim, "add", "b.bin")
    git(victim, "commit", "-q", "-m", "b")
    return victim


def _fresh_clone_reads_both(tmp_path, url, bare, honest, victim):
    _gc(victim, bare)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    for name, source in (("a.bin", honest), ("b.bin", victim)):
        assert sha256_file(fresh / name) == sha256_file(source / name), name


@pytest.mark.parametrize("transport", ["file", "http"])
def test_tags_named_like_a_clones_own_refs_never_stand_in_for_them(tmp_path, transport):
    """refs/panini/local and refs/panini/cache are never pushed: a tag of their name made every clone's
    checkout and `git add` fail (its commit was taken as the ref's tip, and no compare-and-swap on it worked)."""
    with serve_http_remote(tmp_path) as http:
        bare, url = (http.bare, http.url) if transport == "http" else make_bare(tmp_path)
        honest, attacker = _shared(tmp_path, url)
        hostile = _push_tags(attacker, ["refs/panini/local", "refs/panini/cache"])
        victim = _victim_commits(tmp_path, url, honest)
        pushed = git(victim, "push", "-q", "origin", "main")
        assert "ambiguous" not in pushed.stderr
        assert git(victim, "rev-parse", "refs/panini/local").stdout.strip() != hostile
        _fresh_clone_reads_both(tmp_path, url, bare, honest, victim)


@pytest.mark.parametrize("transport", ["file", "http"])
def test_tags_named_like_the_shared_refs_block_no_checkout_or_commit_and_a_push_says_why(tmp_path, transport):
    """A tag named refs/panini/store or refs/notes/panini: a fresh clone's checkout, `git add` and `git commit`
    work (they failed: the tag's commit was taken for the absent ref). git itself refuses a push to a ref
    another ref there matches as a short name (any plain git push to refs/heads/main, likewise): the push
    says so in one line, and works once the tag is deleted."""
    with serve_http_remote(tmp_path) as http:
        bare, url = (http.bare, http.url) if transport == "http" else make_bare(tmp_path)
        honest, attacker = _shared(tmp_path, url)
        _push_tags(attacker, ["refs/panini/store", "refs/notes/panini"])
        victim = _victim_commits(tmp_path, url, honest)
        refused = git(victim, "push", "-q", "origin", "main", check=False)
        assert refused.returncode != 0
        said = [line for line in refused.stderr.splitlines() if line.startswith("git-panini:")]
        assert len(said) == 1 and "deleted there" in said[0] and "Traceback" not in refused.stderr, refused.stderr
        git(attacker, "push", "-q", "origin", ":refs/tags/refs/panini/store", ":refs/tags/refs/notes/panini")
        git(victim, "push", "-q", "origin", "main")
        _fresh_clone_reads_both(tmp_path, url, bare, honest, victim)
