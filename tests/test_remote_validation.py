"""A collaborator with ordinary push access damages what every clone reads from the remote, with Git plumbing
only: a malformed entry in refs/panini/store (case 5), a lock ref recording a path outside the repository
(case 6), refs/panini/store or refs/notes/panini pushed as a blob or a tree (case 7). Each attack is the
attacker's real `git push` to a real bare remote (file://, or smart HTTP); the victims' clones fetch, work and
push through it, no traceback or internal error reaches them, and each test ends with reflog expiry and
`git gc --prune=now` in every repository and the remote, then a fresh clone over file:// that reads every
committed file bit-identical."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import MiB, clone, file_url, git, make_bare, make_repo, pointer_of, run, sha256_file, write_random
from smart_http import configure_bare, serve_http_remote

LOCK_REFS = "refs/panini/locks/"


@pytest.fixture(params=["file", "http"])
def remote(request, tmp_path):
    """(bare path, the URL the clones use): file://, or the same kind of bare repository over smart HTTP."""
    if request.param == "file":
        bare, url = make_bare(tmp_path, name="remote.git")
        configure_bare(bare)
        yield bare, url
    else:
        with serve_http_remote(tmp_path) as served:
            yield served.bare, served.url


def clean(proc):
    """No traceback and no internal error reached the user, whatever the exit code."""
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream and "internal error" not in stream, stream
    return proc


def panini(repo, *args, code: int = 0):
    proc = clean(run(["git", "panini", *args], cwd=repo, check=False))
    assert proc.returncode == code, f"git panini {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def push(repo, *args, ok: bool = True):
    """`git push` (through our pre-push hook); returns the git-panini lines it printed."""
    proc = clean(git(repo, "push", "-q", *args, check=False))
    assert (proc.returncode == 0) == ok, f"git push {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
    return [line for line in proc.stderr.splitlines() if line.startswith("git-panini:")]


def one_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def add_file(repo, name: str, size: int, seed: int) -> str:
    digest = sha256_file(write_random(repo / name, size, seed=seed))
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", name)
    return digest


def team(tmp_path, url):
    """Alice's repository (*.bin tracked, f.bin pushed) and Bob's clone of it; both with git-panini."""
    files = {}
    alice = make_repo(tmp_path, name="alice", track=("*.bin",))
    git(alice, "remote", "add", "origin", url)
    git(alice, "add", ".gitattributes")
    files["f.bin"] = add_file(alice, "f.bin", MiB, seed=1)
    push(alice, "-u", "origin", "main")
    bob = tmp_path / "bob"
    clone(url, bob)
    run(["git", "panini", "install"], cwd=bob)
    return alice, bob, files


def attacker_clone(tmp_path, url):
    """A plain clone (no git-panini) of someone with ordinary push access, holding the remote's panini refs."""
    mallory = tmp_path / "mallory"
    run(["git", "clone", "-q", "--no-checkout", url, str(mallory)])
    git(mallory, "config", "user.name", "Mallory")
    git(mallory, "config", "user.email", "mallory@example.invalid")
    git(mallory, "fetch", "-q", "origin", "+refs/panini/*:refs/panini/*", "+refs/notes/*:refs/notes/*")
    return mallory


def with_entry(repo, tree: str | None, parts: list[bytes], record: bytes) -> str:
    """`tree` with the entry `record` ('<mode> <type> <id>') at path `parts` (any bytes but '/' and NUL),
    built with `git ls-tree` and `git mktree` alone."""
    entries = {}
    if tree:
        for line in git(repo, "ls-tree", "-z", tree, binary=True).stdout.split(b"\0"):
            if line:
                meta, name = line.split(b"\t", 1)
                entries[name] = meta
    name = parts[0]
    if len(parts) > 1:
        below = entries.get(name)
        subtree = below.split()[2].decode() if below and below.split()[1] == b"tree" else None
        entries[name] = b"040000 tree " + with_entry(repo, subtree, parts[1:], record).encode()
    else:
        entries[name] = record
    listing = b"".join(meta + b"\t" + n + b"\0" for n, meta in entries.items())
    return git(repo, "mktree", "-z", input=listing).stdout.strip()


def gc_everywhere(*repos):
    for path in repos:
        git(path, "reflog", "expire", "--expire=now", "--all")
        git(path, "gc", "-q", "--prune=now")


def fresh_clone_reads(tmp_path, bare, files: dict[str, str]):
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    dest = tmp_path / "fresh"
    clean(clone(file_url(bare), dest))
    for path, digest in files.items():
        assert sha256_file(dest / path) == digest, path


# --- case 5: a malformed entry in the remote's store ---------------------------------------------------------


def test_a_malformed_store_entry_is_quarantined_and_named_by_fsck(tmp_path):
    """Entries no git-panini writes under manifests/, packs/ and raw/ of the remote's store (a name that is
    not UTF-8, one that is not hex, a fan directory that is no fan directory), pushed as a fast-forward:
    every clone still fetches, works and pushes (into the very fan directory that holds the bad name), the
    entry is ignored wherever a store tree is read, and fsck names it in one line."""
    bare, url = make_bare(tmp_path, name="remote.git")
    alice, bob, files = team(tmp_path, url)
    files["g.bin"] = add_file(alice, "g.bin", 700_000, seed=2)          # committed, not pushed yet
    fan = pointer_of(alice, "HEAD:g.bin").manifest[:2]

    mallory = attacker_clone(tmp_path, url)
    tip = git(mallory, "rev-parse", "refs/panini/store").stdout.strip()
    tree = git(mallory, "rev-parse", f"{tip}^{{tree}}").stdout.strip()
    junk = git(mallory, "hash-object", "-w", "--stdin", input=b"junk").stdout.strip()
    blob = f"100644 blob {junk}".encode()
    for parts in ([b"manifests", fan.encode(), b"\xff\xfe not utf-8"],     # where g.bin's manifest goes
                  [b"manifests", fan.encode(), b"z" * 40],
                  [b"manifests", b"zz", junk.encode()],
                  [b"packs", junk[:2].encode(), b"not-hex\x80"],
                  [b"raw", junk[:2].encode(), b"\xc3("]):
        tree = with_entry(mallory, tree, parts, blob)
    hostile = git(mallory, "commit-tree", tree, "-p", tip, "-m", "hostile").stdout.strip()
    git(mallory, "push", "-q", "origin", f"{hostile}:refs/panini/store")   # a fast-forward: no force

    panini(alice, "fetch")
    panini(alice, "work", "--effort", "0")
    assert push(alice) == []                                              # publishes into manifests/<fan>/
    assert git(bare, "cat-file", "-t", "refs/panini/store").stdout.strip() == "commit"
    git(bob, "pull", "-q", "--no-rebase")
    files["h.bin"] = add_file(bob, "h.bin", 300_000, seed=3)
    assert push(bob) == []
    panini(bob, "work", "--effort", "0")
    panini(alice, "fetch")

    assert "malformed" not in panini(alice, "fsck").stdout   # our store merged only what a store writes
    remote_report = panini(bob, "fsck", "--remote", "origin").stdout
    named = [line for line in remote_report.splitlines() if "malformed entry" in line]
    assert any(f"manifests/{fan}/\\xff\\xfe not utf-8" in line for line in named), remote_report
    assert sum("malformed entry" in line for line in remote_report.splitlines()) == 5, remote_report

    gc_everywhere(alice, bob, mallory, bare)
    fresh_clone_reads(tmp_path, bare, files)


# --- case 6: a lock whose path is outside the repository --------------------------------------------------------


def hostile_lock(mallory, path: str) -> str:
    record = {"path": path, "owner": "Mallory <mallory@example.invalid>", "time": "2024-01-01T00:00:00Z",
              "host": "evil", "id": "0" * 32}
    blob = git(mallory, "hash-object", "-w", "--stdin", input=json.dumps(record).encode()).stdout.strip()
    tree = git(mallory, "mktree", input=f"100644 blob {blob}\tlock.json\n").stdout.strip()
    commit = git(mallory, "commit-tree", tree, "-m", f"git-panini lock: {path}").stdout.strip()
    ref = LOCK_REFS + hashlib.sha256(path.encode()).hexdigest()
    git(mallory, "push", "-q", "origin", f"{commit}:{ref}")
    return ref


def test_a_lock_outside_the_repository_blocks_no_push_and_unlock_force_removes_it(tmp_path):
    """Over smart HTTP: lock refs recording '../../../../etc/passwd' and '/etc/passwd' are listed by
    `git panini locks` as malformed, one line each; pushes of every clone go on; `unlock --force` removes
    one by the path as recorded and the other by its ref."""
    with serve_http_remote(tmp_path) as served:
        bare, url = served.bare, served.url
        alice, bob, files = team(tmp_path, url)
        mallory = attacker_clone(tmp_path, url)
        outside = hostile_lock(mallory, "../../../../etc/passwd")
        absolute = hostile_lock(mallory, "/etc/passwd")

        files["g.bin"] = add_file(alice, "g.bin", 300_000, seed=2)
        (alice / "notes.txt").write_text("unrelated\n")
        git(alice, "add", "notes.txt")
        git(alice, "commit", "-q", "-m", "notes")
        files["notes.txt"] = sha256_file(alice / "notes.txt")
        assert push(alice) == []

        listed = panini(bob, "locks")
        assert "no locks on origin" in listed.stdout
        lines = listed.stderr.splitlines()
        assert len(lines) == 2 and all("malformed lock" in line for line in lines), listed.stderr
        assert any(outside in line and "../../../../etc/passwd" in line for line in lines), listed.stderr
        as_json = json.loads(panini(bob, "locks", "--json").stdout)
        assert as_json["locks"] == [] and sorted(as_json["malformed_refs"]) == sorted([outside, absolute])

        git(bob, "pull", "-q", "--no-rebase")
        files["h.bin"] = add_file(bob, "h.bin", 300_000, seed=3)
        assert push(bob) == []

        refused = panini(bob, "unlock", outside, code=1)                    # a malformed lock: only --force
        assert "--force" in one_line(refused)
        removed = panini(bob, "unlock", "--force", "../../../../etc/passwd")   # by the path as recorded
        assert outside in removed.stdout
        panini(alice, "unlock", "--force", absolute)                          # by the ref
        assert git(bare, "for-each-ref", LOCK_REFS).stdout == ""
        assert "no locks on origin" in panini(alice, "locks").stdout

    gc_everywhere(alice, bob, mallory, bare)
    fresh_clone_reads(tmp_path, bare, files)


# --- case 7: the store or the notes ref pushed as a blob or a tree ----------------------------------------------------


def test_a_store_or_notes_ref_that_is_no_commit_is_named_at_once_and_repaired(tmp_path, remote):
    """refs/panini/store force-pushed as a blob (its old commits then pruned by the remote's gc), later
    refs/notes/panini as a tree: fetch says so in one line naming the ref (no retry loop, no "racing");
    a push that adds no git-panini file still goes (one warning line), one that adds a file is refused;
    fsck --remote names the ref; `git panini push --repair` replaces it, republishing every file the
    remote's branches reference."""
    bare, url = remote
    alice, bob, files = team(tmp_path, url)
    mallory = attacker_clone(tmp_path, url)
    blob = git(mallory, "hash-object", "-w", "--stdin", input=b"not a commit\n").stdout.strip()
    git(mallory, "push", "-q", "--force", "origin", f"{blob}:refs/panini/store")
    gc_everywhere(bare)                        # the store's commits, trees and manifests are gone from the remote

    line = one_line(panini(alice, "fetch", code=1))
    assert "refs/panini/store" in line and "blob, not a commit" in line and "racing" not in line, line
    (alice / "readme.txt").write_text("no git-panini file in this push\n")
    git(alice, "add", "readme.txt")
    git(alice, "commit", "-q", "-m", "readme")
    files["readme.txt"] = sha256_file(alice / "readme.txt")
    warned = push(alice)
    assert len(warned) == 1 and "refs/panini/store" in warned[0] and "goes on" in warned[0], warned
    files["g.bin"] = add_file(alice, "g.bin", 300_000, seed=2)
    refused = push(alice, ok=False)
    assert len(refused) == 1 and "refs/panini/store" in refused[0] and "racing" not in refused[0], refused
    checked = panini(bob, "fsck", "--remote", "origin", code=1).stdout
    assert any("refs/panini/store" in l and "blob" in l for l in checked.splitlines() if l.startswith("error:")), checked

    # Alice still holds every file the remote's branches reference (Bob's lazy clone never fetched them).
    assert "replaced refs/panini/store" in panini(alice, "push", "--repair").stdout
    assert push(alice) == []                                                # g.bin goes now
    assert git(bare, "cat-file", "-t", "refs/panini/store").stdout.strip() == "commit"

    tree = git(mallory, "mktree", input=f"100644 blob {blob}\tx\n").stdout.strip()
    git(mallory, "push", "-q", "--force", "origin", f"{tree}:refs/notes/panini")
    git(bob, "pull", "-q", "--no-rebase")
    line = one_line(panini(bob, "fetch", code=1))
    assert "refs/notes/panini" in line and "tree, not a commit" in line, line
    files["h.bin"] = add_file(bob, "h.bin", 300_000, seed=3)
    assert "refs/notes/panini" in push(bob, ok=False)[0]
    assert "replaced refs/notes/panini" in panini(bob, "push", "--repair").stdout
    assert push(bob) == []
    panini(alice, "fetch")
    panini(alice, "work", "--effort", "0")

    gc_everywhere(alice, bob, mallory, bare)
    fresh_clone_reads(tmp_path, bare, files)
