"""The merge driver `merge=panini`, through real `git merge`: never conflict-marker text in a tracked file."""

from __future__ import annotations

from conftest import clone, git, make_bare, make_repo, run, sha256_file, write_random
from git_panini.format.pointer import parse

MARKERS = (b"<<<<<<<", b">>>>>>>", b"=======")


def _setup(tmp_path, track=("*.bin",)):
    _, url = make_bare(tmp_path)
    repo = make_repo(tmp_path, track=track)
    git(repo, "remote", "add", "origin", url)
    return repo, url


def _commit(repo, message):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def _no_markers(repo, path):
    """Neither the working tree nor any index stage of path holds marker text."""
    assert not any(m in (repo / path).read_bytes() for m in MARKERS)
    for line in git(repo, "ls-files", "-s", "--", path).stdout.splitlines():
        blob = git(repo, "cat-file", "blob", line.split()[1], binary=True).stdout
        assert blob.startswith(b"version git-panini/1\n") and not any(m in blob for m in MARKERS)


def test_install_configures_the_driver_and_track_writes_merge_panini(tmp_path):
    repo, _ = _setup(tmp_path)
    assert git(repo, "config", "merge.panini.driver").stdout.strip().endswith("git-panini merge-driver %O %A %B %P")
    assert (repo / ".gitattributes").read_text() == "*.bin filter=panini diff=panini merge=panini -text\n"
    # An attributes line written by an older version is upgraded in place, not duplicated.
    (repo / ".gitattributes").write_text("*.bin filter=panini diff=panini -text lockable\n")
    run(["git", "panini", "track", "*.bin"], cwd=repo)
    assert (repo / ".gitattributes").read_text() == "*.bin filter=panini diff=panini merge=panini -text lockable\n"


def test_binary_conflict_keeps_ours_and_theirs_can_be_picked(tmp_path):
    repo, url = _setup(tmp_path)
    write_random(repo / "art.bin", 300_000, seed=1)
    _commit(repo, "base")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "checkout", "-q", "-b", "theirs")
    write_random(repo / "art.bin", 310_000, seed=2)
    theirs = sha256_file(repo / "art.bin")
    _commit(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    write_random(repo / "art.bin", 320_000, seed=3)
    ours = sha256_file(repo / "art.bin")
    _commit(repo, "ours")

    proc = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if l.startswith("git-panini:")]
    assert len(lines) == 1, proc.stderr
    assert "kept ours (312.5 KiB, sha256 " + ours[:12] in lines[0]
    assert f"theirs is 302.7 KiB, sha256 {theirs[:12]}" in lines[0]
    assert "git checkout --theirs -- art.bin" in lines[0]
    assert sha256_file(repo / "art.bin") == ours
    assert len(git(repo, "ls-files", "-u", "--", "art.bin").stdout.splitlines()) == 3
    _no_markers(repo, "art.bin")

    git(repo, "checkout", "--theirs", "--", "art.bin")
    assert sha256_file(repo / "art.bin") == theirs
    git(repo, "add", "art.bin")
    git(repo, "commit", "-q", "--no-edit")
    _no_markers(repo, "art.bin")
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    assert sha256_file(fresh / "art.bin") == theirs
    run(["git", "panini", "verify"], cwd=fresh)


def test_text_files_merge_cleanly_when_their_changes_do_not_overlap(tmp_path):
    repo, url = _setup(tmp_path, track=("*.txt",))
    lines = [f"line {i} of a tracked text file\n" for i in range(200)]
    (repo / "notes.txt").write_text("".join(lines))
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    (repo / "notes.txt").write_text("".join(lines[:150] + ["their line\n"] + lines[151:]))
    _commit(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("".join(["our line\n"] + lines[1:]))
    _commit(repo, "ours")

    git(repo, "merge", "-q", "--no-edit", "theirs")
    expected = "".join(["our line\n"] + lines[1:150] + ["their line\n"] + lines[151:])
    assert (repo / "notes.txt").read_text() == expected
    blob = git(repo, "cat-file", "blob", "HEAD:notes.txt", binary=True).stdout
    assert blob.startswith(b"version git-panini/1\n")
    git(repo, "push", "-q", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    fresh = tmp_path / "fresh"
    clone(url, fresh)
    assert (fresh / "notes.txt").read_text() == expected


def test_overlapping_text_changes_are_marked_in_the_text_as_git_does(tmp_path):
    """Text conflicts read as in any Git merge: markers in the working file (its stored form a pointer),
    the three stages in the index; the user edits and adds the result."""
    repo, _ = _setup(tmp_path, track=("*.txt",))
    (repo / "notes.txt").write_text("a\nb\nc\n")
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    (repo / "notes.txt").write_text("a\ntheirs\nc\n")
    _commit(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("a\nours\nc\n")
    _commit(repo, "ours")
    proc = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert proc.returncode == 1 and "1 conflict(s) marked in the text" in proc.stderr
    assert (repo / "notes.txt").read_text() == "a\n<<<<<<< ours\nours\n=======\ntheirs\n>>>>>>> theirs\nc\n"
    assert sorted(l.split()[2] for l in git(repo, "ls-files", "-u", "notes.txt").stdout.splitlines()) == ["1", "2", "3"]
    git(repo, "checkout", "--theirs", "--", "notes.txt")
    assert (repo / "notes.txt").read_text() == "a\ntheirs\nc\n"
    (repo / "notes.txt").write_text("a\nboth\nc\n")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "--no-edit")
    assert git(repo, "cat-file", "blob", "HEAD:notes.txt", binary=True).stdout.startswith(b"version git-panini/1\n")
    assert run(["git", "panini", "verify"], cwd=repo).returncode == 0


def test_same_content_in_two_pointers_resolves_cleanly(tmp_path):
    """Two pointers to the same bytes that differ as text (an extra key): no conflict, ours kept."""
    repo, _ = _setup(tmp_path)
    write_random(repo / "art.bin", 100_000, seed=4)
    _commit(repo, "one")
    pointer = git(repo, "cat-file", "blob", "HEAD:art.bin", binary=True).stdout
    lines = pointer.decode().splitlines(keepends=True)
    other = "".join(lines[:1] + ["ext-note made-elsewhere\n"] + lines[1:]).encode()
    base, ours, theirs = (tmp_path / n for n in ("O", "A", "B"))
    base.write_bytes(b"")
    ours.write_bytes(pointer)
    theirs.write_bytes(other)
    proc = run(["git", "panini", "merge-driver", base, ours, theirs, "art.bin"], cwd=repo, check=False)
    assert proc.returncode == 0, proc.stderr
    assert ours.read_bytes() == pointer
    # A different file on their side: a conflict, ours untouched.
    theirs.write_bytes(pointer.replace(b"size 100000", b"size 100001"))
    proc = run(["git", "panini", "merge-driver", base, ours, theirs, "art.bin"], cwd=repo, check=False)
    assert proc.returncode == 1 and ours.read_bytes() == pointer
    assert len(proc.stderr.splitlines()) == 1


def test_a_side_committed_before_tracking_is_stored_as_a_pointer(tmp_path):
    """Theirs changed the file before the path was tracked (a plain blob): the merge result is cleaned, never
    a plain blob at a tracked path (which `verify` would not even see)."""
    repo = make_repo(tmp_path, name="late")
    write_random(repo / "big.bin", 300_000, seed=11)
    _commit(repo, "base, untracked")
    git(repo, "checkout", "-q", "-b", "other")
    write_random(repo / "big.bin", 300_000, seed=12)
    _commit(repo, "edit before tracking")
    theirs = (repo / "big.bin").read_bytes()
    git(repo, "checkout", "-q", "main")
    run(["git", "panini", "track", "*.bin"], cwd=repo)
    git(repo, "add", "--renormalize", ".")
    _commit(repo, "track")
    git(repo, "merge", "-q", "--no-edit", "other")
    blob = git(repo, "cat-file", "blob", "HEAD:big.bin", binary=True).stdout
    assert blob.startswith(b"version git-panini/1\n") and parse(blob).size == len(theirs)
    assert (repo / "big.bin").read_bytes() == theirs and not git(repo, "status", "--porcelain").stdout
    assert "1 of 1 file(s) verified" in run(["git", "panini", "verify"], cwd=repo).stdout
