"""The read bound (docs/format.md, "Read amplification"): after `git panini work`, a checkout of any hot
commit decodes at most 1.5x the bytes it writes; `git panini fsck --amplification` computes it for every
commit and fails when a commit breaks it."""

from __future__ import annotations

import json
import random

from conftest import clone, edit_in_place, file_url, git, ls_tree, make_bare, run, sha256_file, short_words
from git_panini.work.planner import FAST_DECODE

COMMITS = 24
INCREMENTAL_COMMITS = 12



def _history(repo, seed: int = 3) -> dict[str, dict[str, str]]:
    """COMMITS commits: two 600 KB files edited in place most commits, twelve small files of 20-50 KB of
    which two change per commit. Returns {commit: {path: sha256}}."""
    rng = random.Random(seed)
    files = {f"big{i}.bin": short_words(rng, 600_000) for i in range(2)}
    files.update({f"small/s{i}.bin": short_words(rng, rng.randint(20_000, 50_000)) for i in range(12)})
    (repo / "small").mkdir()
    expected = {}
    for n in range(COMMITS):
        changed = [p for p in files if p.startswith("big") and rng.random() < 0.7]
        changed += rng.sample(sorted(p for p in files if p.startswith("small")), 2)
        for path in changed if n else files:
            data = files[path]
            edit_in_place(data, rng, 2)
            (repo / path).write_bytes(data)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"version {n}")
        expected[git(repo, "rev-parse", "HEAD").stdout.strip()] = {p: sha256_file(repo / p) for p in files}
    return expected


def _recipes(repo) -> list[dict]:
    return [json.loads(git(repo, "cat-file", "-p", oid).stdout)
            for _, oid, _ in ls_tree(repo, "refs/panini/store", "packs").values()]


def _recipe(repo, oid: str) -> dict:
    return json.loads(git(repo, "cat-file", "-p", oid).stdout)


def _amplification(repo) -> tuple[int, dict]:
    proc = run(["git", "panini", "fsck", "--amplification", "--json"], cwd=repo, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_every_hot_commit_within_the_bound_after_work(repo, tmp_path):
    expected = _history(repo)
    remote, url = make_bare(tmp_path)
    git(repo, "remote", "add", "origin", url)
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "work"], cwd=repo)
    for where in (repo, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")

    # Hot data waits on no slow decoder (balanced profile); some versions are deltas against the one before.
    recipes = _recipes(repo)
    codecs_used = {step["codec"] for recipe in recipes for step in recipe["steps"]}
    assert codecs_used and codecs_used <= FAST_DECODE, codecs_used
    packs = {oid for _, oid, _ in ls_tree(repo, "refs/panini/store", "packs").values()}
    deltas = [r for r in recipes if r.get("base")]
    assert deltas and all(r["format"] == "git-panini-recipe/2" and r["base"] in packs for r in deltas)
    assert not any(r.get("base") for r in recipes if r in deltas and _recipe(repo, r["base"]).get("base"))

    code, report = _amplification(repo)
    assert report["summary"]["commits"] == COMMITS + 1
    over = [c for c in report["commits"] if not c["within_bound"]]
    assert code == 0 and not over, over
    assert report["summary"]["decode_ratio"]["max"] <= 1.5
    assert max(c["packs"] for c in report["commits"]) > 1   # packed, not read raw

    # A fresh clone over file:// reads old and new commits bit-identical from the packs alone.
    fresh = tmp_path / "fresh"
    run(["git", "panini", "install", "--global"], cwd=tmp_path)   # the clone smudges
    clone(file_url(remote), fresh)
    assert git(remote, "for-each-ref", "refs/panini/raw").stdout == ""   # every raw batch retired
    code, report = _amplification(fresh)
    assert code == 0, [c for c in report["commits"] if not c["within_bound"]]
    commits = list(expected)
    for commit in commits:   # every one: deltas and their bases read back
        git(fresh, "checkout", "-q", commit)
        assert {p: sha256_file(fresh / p) for p in expected[commit]} == expected[commit]


def test_cold_history_is_packed_solid_and_the_checker_says_so(repo, tmp_path):
    """With one hot commit (the tip), older versions are cold: packed for size across versions, which
    breaks the bound for old commits; the checker names them and exits 1, the tip stays within it."""
    _history(repo)
    git(repo, "config", "panini.hotCommits", "1")
    run(["git", "panini", "work", "--no-remote"], cwd=repo)
    assert {step["codec"] for recipe in _recipes(repo) for step in recipe["steps"]} - FAST_DECODE   # cold: strongest
    code, report = _amplification(repo)
    tip = git(repo, "rev-parse", "HEAD").stdout.strip()
    by_commit = {c["commit"]: c for c in report["commits"]}
    assert by_commit[tip]["within_bound"]
    assert code == 1 and report["summary"]["over_bound"] > 0
    text = run(["git", "panini", "fsck", "--amplification"], cwd=repo, check=False)
    assert text.returncode == 1
    assert "over the bound" in text.stdout.splitlines()[-1]
    assert all(line.startswith("over: ") for line in text.stdout.splitlines()[:-1])


def test_an_unknown_profile_is_one_line_and_packs_nothing(repo):
    (repo / "a.bin").write_bytes(short_words(random.Random(1), 100_000))
    git(repo, "add", "a.bin")
    git(repo, "commit", "-q", "-m", "a")
    git(repo, "config", "panini.profile", "fastest")
    proc = run(["git", "panini", "work", "--no-remote"], cwd=repo, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["git-panini: panini.profile is 'fastest': it must be one of "
                                                "balanced, archive"]
    assert git(repo, "for-each-ref", "refs/panini/packs").stdout == ""


def test_a_lineage_packed_version_by_version_stays_within_the_bound(repo, tmp_path):
    """A worker after every push (as CI runs it) packs one version at a time; the packs earlier versions
    left are packed again where they would make a hot checkout decode too much."""
    remote, url = make_bare(tmp_path)
    git(repo, "remote", "add", "origin", url)
    rng = random.Random(5)
    files = {f"big{i}.bin": short_words(rng, 900_000) for i in range(2)}
    files.update({f"s{i}.bin": short_words(rng, 40_000) for i in range(6)})
    expected = {}
    for n in range(INCREMENTAL_COMMITS):
        for path in files if n == 0 else ["big0.bin", "big1.bin", f"s{n % 6}.bin"]:
            data = files[path]
            edit_in_place(data, rng, 3)
            (repo / path).write_bytes(data)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"version {n}")
        git(repo, "push", "-q", "origin", "main")
        run(["git", "panini", "work"], cwd=repo)
        expected[git(repo, "rev-parse", "HEAD").stdout.strip()] = {p: sha256_file(repo / p) for p in files}
    code, report = _amplification(repo)
    assert code == 0, [(c["commit"][:8], c["decode_ratio"]) for c in report["commits"] if not c["within_bound"]]

    for where in (repo, remote):
        git(where, "reflog", "expire", "--expire=now", "--all")
        git(where, "gc", "-q", "--prune=now")
    fresh = tmp_path / "fresh"
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    clone(file_url(remote), fresh)
    for commit in (list(expected)[0], list(expected)[-1]):
        git(fresh, "checkout", "-q", commit)
        assert {p: sha256_file(fresh / p) for p in expected[commit]} == expected[commit]
