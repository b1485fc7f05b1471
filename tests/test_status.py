"""`status`: "new" means one thing whoever re-cleans a file, a clone shows the remote's notes, pipes get whole paths."""

from __future__ import annotations

import json

from conftest import clone, git, make_bare, make_repo, run, write_random

LONG = "assets/" + "a-rather-long-directory-name-for-textures/" * 3 + "hero-diffuse-map-final.bin"


def _status(repo, *args):
    return {f["path"]: f for f in json.loads(run(["git", "panini", "status", "--json", *args], cwd=repo).stdout)["files"]}


def _published(tmp_path):
    remote, url = make_bare(tmp_path)
    alice = make_repo(tmp_path, name="alice", track=("*.bin",))
    git(alice, "remote", "add", "origin", url)
    write_random(alice / "x.bin", 700_000, seed=11)
    write_random(alice / LONG, 50_000, seed=12)
    git(alice, "add", "-A")
    git(alice, "commit", "-q", "-m", "one")
    git(alice, "push", "-q", "origin", "main")
    return remote, url, alice


def test_a_clone_shows_the_remotes_notes_and_new_stays_put(tmp_path):
    remote, url, alice = _published(tmp_path)
    first = _status(alice, "--offline")
    assert first["x.bin"]["status"] == "pending" and first["x.bin"]["unique_bytes"] == 700_000
    run(["git", "panini", "work"], cwd=alice)
    assert _status(alice)["x.bin"]["status"] == "completed"

    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    # A local-path clone (objects hardlinked, nothing fetched): no notes of its own.
    bob = tmp_path / "bob"
    git(tmp_path, "clone", "-q", str(remote), str(bob))
    assert _status(bob, "--offline")["x.bin"]["status"] == "local"
    shown = _status(bob)
    assert shown["x.bin"]["status"] == "completed" and shown["x.bin"]["unique_bytes"] == 700_000

    # Bob re-cleans every file and pushes; a third clone re-cleans too: "new" does not move.
    git(bob, "add", "--renormalize", ".")
    write_random(bob / "y.bin", 1000, seed=13)
    git(bob, "add", "-A")
    git(bob, "commit", "-q", "-m", "two")
    git(bob, "push", "-q", "origin", "main")
    carol = tmp_path / "carol"
    clone(url, carol)
    git(carol, "add", "--renormalize", ".")
    for repo in (alice, bob, carol):
        git(repo, "pull", "-q", "origin", "main")
        shown = _status(repo)
        assert shown["x.bin"]["unique_bytes"] == 700_000 and shown["x.bin"]["status"] == "completed", repo
        assert shown[LONG]["unique_bytes"] == 50_000


def test_an_unreachable_remote_is_one_warning_and_the_local_notes(tmp_path):
    _, _, alice = _published(tmp_path)
    git(alice, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    proc = run(["git", "panini", "status"], cwd=alice)
    assert proc.stderr.count("\n") == 1 and "fetching the notes of 'origin' failed" in proc.stderr
    assert "pending" in proc.stdout


def test_piped_status_prints_whole_paths(tmp_path):
    _, _, alice = _published(tmp_path)
    out = run(["git", "panini", "status", "--offline"], cwd=alice).stdout.splitlines()
    assert out[0].split() == ["file", "size", "new", "stored", "ratio", "status"]
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert rows[LONG] == ["48.8", "KiB", "48.8", "KiB", "-", "-", "pending"]
    assert rows["x.bin"][-1] == "pending"


def test_a_clone_made_without_the_filter_is_told_its_files_are_pointers_until_checkout(tmp_path):
    """No global filter when cloning: every tracked file is its pointer text. `install` says what fixes it,
    `status` tells those files from real ones (and names only them), `checkout` makes them real."""
    _, url, alice = _published(tmp_path)
    bob = tmp_path / "bob"
    clone(url, bob)
    assert (bob / "x.bin").read_bytes().startswith(b"version git-panini")
    proc = run(["git", "panini", "install"], cwd=bob)
    assert "2 file(s) in the working tree are their pointer text" in proc.stdout
    assert "run git panini checkout" in proc.stdout
    write_random(bob / "x.bin", 700_000, seed=11)           # one made real by hand: not a pointer any more
    shown = _status(bob)
    assert not shown["x.bin"]["pointer_in_working_tree"] and shown[LONG]["pointer_in_working_tree"]
    proc = run(["git", "panini", "status"], cwd=bob)
    assert proc.stdout.count("pointer text in the working tree") == 1 and LONG in proc.stdout
    assert proc.stderr == ("git-panini: 1 file(s) in the working tree are their pointer text, not their data "
                           "(checked out without the filter): run git panini checkout\n")
    assert not _status(bob, "--rev", "HEAD~0")[LONG]["pointer_in_working_tree"]   # another rev: not compared
    run(["git", "panini", "checkout"], cwd=bob)
    assert not any(f["pointer_in_working_tree"] for f in _status(bob).values())
    assert run(["git", "panini", "status"], cwd=bob).stderr == ""
    assert "pointer text" not in run(["git", "panini", "install"], cwd=bob).stdout
    assert "pointer text" not in run(["git", "panini", "install"], cwd=alice).stdout
