"""The `-delta` lines `install` writes reach the store's own blobs only, never a user's chunks/ or packs/ folder."""

from __future__ import annotations

from conftest import git, make_repo, run, write_random

from git_panini.cli.install import OLD_STORE_ATTRIBUTES, STORE_ATTRIBUTES


def _delta(repo, paths):
    out = git(repo, "check-attr", "-z", "delta", "--", *paths).stdout.split("\0")
    return {out[i]: out[i + 2] for i in range(0, len(out) - 2, 3)}


def test_only_store_paths_lose_deltas(tmp_path):
    repo = make_repo(tmp_path, track=("*.bin",))
    write_random(repo / "big.bin", 100_000, seed=5)
    git(repo, "add", "big.bin")
    git(repo, "commit", "-q", "-m", "one")
    # Every blob path of the store's trees (local store, shared store) and of a raw batch's fan.
    store_paths = []
    for ref in ("refs/panini/local",):
        store_paths += git(repo, "ls-tree", "-r", "--name-only", ref).stdout.split()
    chunks = [p for p in store_paths if p.startswith("chunks/")]
    assert chunks
    raw_batch_path = chunks[0][len("chunks/"):]
    recipe_path = "packs/" + raw_batch_path
    user_paths = ["chunks/a.bin", "chunks/ab/readme.txt", "packs/textures/x.png", "ab/cd.txt", "packs/ab/notes"]
    found = _delta(repo, chunks + [raw_batch_path, recipe_path] + user_paths)
    assert all(found[p] == "unset" for p in chunks + [raw_batch_path, recipe_path]), found
    assert all(found[p] == "unspecified" for p in user_paths), found


def test_install_replaces_the_old_unscoped_lines(tmp_path):
    repo = make_repo(tmp_path, install=False)
    attributes = repo / ".git" / "info" / "attributes"
    attributes.write_text("*.raw binary\n" + OLD_STORE_ATTRIBUTES)
    run(["git", "panini", "install"], cwd=repo)
    run(["git", "panini", "install"], cwd=repo)
    assert attributes.read_text() == "*.raw binary\n" + STORE_ATTRIBUTES
