"""Locks kept in the Git remote itself (git_panini/transfer/locks.py), against real bare remotes over file:// and smart
HTTP: clones racing for one lock, pushes of locked files refused, --force, read-only lockable files, JSON.

Two users are two clones with different `user.name`/`user.email` (the lock owner is the committer
identity). Races start both `git panini lock` processes at once, and a pre-receive hook on the remote holds
each lock push until both have arrived, so every round is decided by the remote's compare-and-swap on the
ref (not by one racer seeing the other's lock first): exactly one may win.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import clone, file_url, git, make_bare, make_repo, run
from smart_http import configure_bare, serve_http_remote

USERS = {"alice": ("Alice", "alice@example.invalid"), "bob": ("Bob", "bob@example.invalid")}
LOCK_REFS = "refs/panini/locks/"


@pytest.fixture(params=["file", "http"])
def remote_url(request, tmp_path):
    if request.param == "file":
        bare, url = make_bare(tmp_path)
        configure_bare(bare)
        yield bare, url
    else:
        with serve_http_remote(tmp_path) as served:
            yield served.bare, served.url


# The remote's pre-receive hook (real git runs it after receiving a push, before updating any ref) holds
# every push that creates a lock ref until two have arrived: so both racers have read the remote's locks
# (none yet) and both ask it to create the ref; only its compare-and-swap can keep one out.
BARRIER_HOOK = """#!/bin/sh
create=
while read old new ref; do
    case "$ref" in {prefix}*) case "$old" in *[!0]*) ;; *) create=1 ;; esac ;; esac
done
[ -n "$create" ] || exit 0
: > "{dir}/$$"
i=0
while [ "$(ls "{dir}" | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
exit 0
"""


def install_barrier(bare, directory: Path) -> Path:
    directory.mkdir()
    hook = Path(bare) / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(BARRIER_HOOK.format(prefix=LOCK_REFS, dir=directory))
    hook.chmod(0o755)
    return directory


def arrivals(barrier: Path) -> int:
    """How many pushes reached the barrier since the last call (which empties it)."""
    names = list(barrier.iterdir())
    for name in names:
        name.unlink()
    return len(names)


def as_user(repo, user: str):
    name, email = USERS[user]
    git(repo, "config", "user.name", name)
    git(repo, "config", "user.email", email)


def owner(user: str) -> str:
    name, email = USERS[user]
    return f"{name} <{email}>"


def panini(repo, *args, check=True):
    return run(["git", "panini", *args], cwd=repo, check=check)


def one_line_error(proc, code: int) -> str:
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}: {proc.stderr}"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, f"not one line on stderr:\n{proc.stderr}"
    return lines[0]


def refused_push(proc) -> str:
    """The pre-push hook's refusal: one git-panini line (git adds its own "failed to push" after it)."""
    assert proc.returncode != 0, "the push went through"
    ours = [line for line in proc.stderr.splitlines() if line.startswith("git-panini:")]
    assert len(ours) == 1 and "Traceback" not in proc.stderr, f"not one git-panini line:\n{proc.stderr}"
    return ours[0]


def remote_locks(bare) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(objectname) %(refname)", LOCK_REFS).stdout
    return {ref: oid for oid, ref in (line.split() for line in out.splitlines())}


def writable(path) -> bool:
    return bool(os.stat(path).st_mode & stat.S_IWUSR)


def setup_team(tmp_path, url) -> tuple[Path, Path]:
    """Alice's repository (*.psd lockable, *.bin tracked, one commit pushed) and Bob's clone of it, both with
    git-panini installed (Bob's through the global filter, as a new user's clone would be)."""
    alice = make_repo(tmp_path, name="alice")
    as_user(alice, "alice")
    panini(alice, "track", "--lockable", "*.psd")
    panini(alice, "track", "*.bin")
    (alice / "art.psd").write_bytes(b"layered image v1\n" * 100)
    (alice / "other.psd").write_bytes(b"another image\n" * 50)
    (alice / "data.bin").write_bytes(os.urandom(4096))
    (alice / "notes.txt").write_text("plain\n")
    git(alice, "add", "-A")
    git(alice, "commit", "-q", "-m", "first")
    git(alice, "remote", "add", "origin", url)
    git(alice, "push", "-q", "-u", "origin", "main")
    run(["git", "panini", "install", "--global"], cwd=tmp_path)
    bob = tmp_path / "bob"
    clone(url, bob)
    as_user(bob, "bob")
    return alice, bob


def edit_and_commit(repo, name: str, text: str):
    path = Path(repo) / name
    os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)   # a user may chmod it: pre-push still refuses
    path.write_text(text)
    git(repo, "commit", "-q", "-a", "-m", f"edit {name}")


# --- the compare-and-swap itself -------------------------------------------------------------------------


def test_racing_lease_pushes_cannot_both_create_a_ref(tmp_path, remote_url, slow):
    """The primitive locks.py relies on: `git push --atomic --force-with-lease=<ref>:` of a new ref. Two
    clones push different commits to the same new ref at once, many rounds: exactly one succeeds."""
    bare, url = remote_url
    barrier = install_barrier(bare, tmp_path / "barrier")
    clones = []
    for name in ("one", "two"):
        path = tmp_path / name
        git(tmp_path, "init", "-q", str(path))
        clones.append(path)
    rounds = 40 if slow else 8
    for i in range(rounds):
        ref = f"{LOCK_REFS}race{i}"
        empty_trees = [git(c, "mktree", input="").stdout.strip() for c in clones]
        commits = [git(c, "commit-tree", "-m", f"{c.name} {i}", tree).stdout.strip() for c, tree in zip(clones, empty_trees)]
        procs = [subprocess.Popen(["git", "push", "--quiet", "--porcelain", "--no-verify", "--atomic",
                                   f"--force-with-lease={ref}:", url, f"{commit}:{ref}"], cwd=c,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for c, commit in zip(clones, commits)]
        codes = [p.wait(timeout=120) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        assert arrivals(barrier) == 2, f"round {i}: the two pushes did not meet at the remote"
        assert sorted(codes) == [0, 1], f"round {i}: exit codes {codes}"
        assert remote_locks(bare)[ref] == commits[codes.index(0)], f"round {i}: the ref is not the winner's commit"


# --- two users, one lock -------------------------------------------------------------------------------------


def test_two_clones_race_for_one_lock(tmp_path, remote_url, slow):
    bare, url = remote_url
    alice, bob = setup_team(tmp_path, url)
    barrier = install_barrier(bare, tmp_path / "barrier")
    users = {"alice": alice, "bob": bob}
    rounds = 20 if slow else 4
    winners = []
    for i in range(rounds):
        order = list(users.items()) if i % 2 == 0 else list(reversed(users.items()))
        procs = {user: subprocess.Popen(["git", "panini", "lock", "art.psd"], cwd=repo, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE) for user, repo in order}
        results = {user: (p.wait(timeout=120), p.stdout.read().decode(), p.stderr.read().decode())
                   for user, p in procs.items()}
        for p in procs.values():
            p.stdout.close()
            p.stderr.close()
        assert arrivals(barrier) == 2, f"round {i}: the two lock pushes did not meet at the remote: {results}"
        won = [user for user, (code, _, _) in results.items() if code == 0]
        assert len(won) == 1, f"round {i}: {len(won)} winners: {results}"
        winner = won[0]
        loser = "bob" if winner == "alice" else "alice"
        code, _, err = results[loser]
        assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, f"round {i}: {results[loser]}"
        assert f"art.psd is locked by {owner(winner)}" in err, err
        refs = remote_locks(bare)
        assert len(refs) == 1, f"round {i}: the remote holds {len(refs)} lock refs"
        record = json.loads(git(bare, "cat-file", "blob", f"{next(iter(refs.values()))}:lock.json").stdout)
        assert record["owner"] == owner(winner) and record["path"] == "art.psd"
        winners.append(winner)
        if i < rounds - 1:
            panini(users[winner], "unlock", "art.psd")
            assert not remote_locks(bare)

    (Path(bare) / "hooks" / "pre-receive").unlink()   # single pushes from here on

    # The loser's change to the locked file is refused, one line naming the file and the owner.
    winner = winners[-1]
    loser = "bob" if winner == "alice" else "alice"
    edit_and_commit(users[loser], "art.psd", "the loser's version\n")
    line = refused_push(git(users[loser], "push", "-q", "origin", "HEAD:main", check=False))
    assert "art.psd" in line and owner(winner) in line, line
    assert git(bare, "rev-parse", "main").stdout.strip() != git(users[loser], "rev-parse", "HEAD").stdout.strip()

    # The winner pushes a change to it; then unlocks; the loser locks it and pushes.
    panini(users[winner], "lock", "art.psd")   # held already: says so, exit 0
    git(users[loser], "reset", "-q", "--hard", "HEAD~1")
    edit_and_commit(users[winner], "art.psd", "the winner's version\n")
    git(users[winner], "push", "-q", "origin", "HEAD:main")
    panini(users[winner], "unlock", "art.psd")
    git(users[loser], "pull", "-q", "--no-rebase", "origin", "main")
    assert (users[loser] / "art.psd").read_text() == "the winner's version\n"
    panini(users[loser], "lock", "art.psd")
    edit_and_commit(users[loser], "art.psd", "the loser's version, after all\n")
    git(users[loser], "push", "-q", "origin", "HEAD:main")
    assert git(bare, "rev-parse", "main").stdout.strip() == git(users[loser], "rev-parse", "HEAD").stdout.strip()


def test_pushes_of_own_and_unlocked_files_go_through(tmp_path):
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    # With no locks on the remote the pre-push hook asks about them once (one ls-remote), fetches nothing.
    edit_and_commit(bob, "notes.txt", "before any lock\n")
    trace = tmp_path / "trace"
    run(["git", "push", "-q", "origin", "HEAD:main"], cwd=bob, env={"GIT_TRACE": str(trace)})
    asked = [line for line in trace.read_text().splitlines() if "built-in: git" in line and LOCK_REFS in line]
    assert len(asked) == 1 and "ls-remote" in asked[0], asked
    panini(alice, "lock", "art.psd")
    git(alice, "pull", "-q", "--no-rebase")
    # Bob changes files nobody else has locked: fine, the lock on art.psd does not matter.
    edit_and_commit(bob, "other.psd", "bob's other\n")
    edit_and_commit(bob, "notes.txt", "bob's notes\n")
    git(bob, "push", "-q", "origin", "HEAD:main")
    # A merge that only brings in Bob's changes does not touch art.psd; Alice's own locked file goes too.
    git(alice, "pull", "-q", "--no-rebase", "origin", "main")
    edit_and_commit(alice, "art.psd", "alice's edit\n")
    git(alice, "push", "-q", "origin", "HEAD:main")
    # Bob merges Alice's change to art.psd (not his own change): his next push is not refused for it.
    git(bob, "pull", "-q", "--no-rebase")
    edit_and_commit(bob, "notes.txt", "more notes\n")
    git(bob, "push", "-q", "origin", "HEAD:main")
    # But a commit of his own touching it on a new branch is.
    git(bob, "checkout", "-q", "-b", "feature")
    edit_and_commit(bob, "art.psd", "bob's sneaky edit\n")
    line = refused_push(git(bob, "push", "-q", "origin", "feature", check=False))
    assert "art.psd is locked by " + owner("alice") in line, line
    assert "refs/heads/feature" not in git(bare, "for-each-ref").stdout


def test_force_unlock_by_another_user(tmp_path):
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    panini(alice, "lock", "art.psd")
    line = one_line_error(panini(bob, "unlock", "art.psd", check=False), 1)
    assert "locked by " + owner("alice") in line and "--force" in line, line
    assert len(remote_locks(bare)) == 1
    out = panini(bob, "unlock", "--force", "art.psd").stdout
    assert "unlocked art.psd" in out
    assert not remote_locks(bare)
    line = one_line_error(panini(alice, "unlock", "art.psd", check=False), 1)
    assert "not locked" in line
    panini(bob, "lock", "art.psd")
    listed = json.loads(panini(alice, "locks", "--json").stdout)
    assert [(l["path"], l["owner"], l["mine"]) for l in listed["locks"]] == [("art.psd", owner("bob"), False)]
    released = json.loads(panini(bob, "unlock", "--json", "art.psd").stdout)
    assert [(l["path"], l["owner"], l["mine"]) for l in released["unlocked"]] == [("art.psd", owner("bob"), True)]
    assert not remote_locks(bare)


# --- read-only lockable files ----------------------------------------------------------------------------


def test_lockable_files_are_read_only_unless_locked(tmp_path):
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    # In the repository that committed them: read-only too, once committed (the post-commit hook).
    assert not writable(alice / "art.psd") and writable(alice / "notes.txt")
    # After clone: lockable files read-only, the others writable.
    assert not writable(bob / "art.psd") and not writable(bob / "other.psd")
    assert writable(bob / "data.bin") and writable(bob / "notes.txt")
    assert (bob / "art.psd").read_bytes() == (alice / "art.psd").read_bytes()
    panini(bob, "lock", "art.psd")
    assert writable(bob / "art.psd") and not writable(bob / "other.psd")
    # A checkout keeps the lock holder's file writable and makes Git's fresh copies of the others read-only.
    git(bob, "checkout", "-q", "-b", "side")
    (bob / "art.psd").write_text("bob's edit\n")
    line = one_line_error(panini(bob, "unlock", "art.psd", check=False), 1)
    assert "art.psd has uncommitted changes" in line, line
    git(bob, "commit", "-q", "-a", "-m", "bob's edit")
    (bob / "other.psd").unlink()
    git(bob, "checkout", "-q", "--", "other.psd")
    git(bob, "checkout", "-q", "main")
    assert writable(bob / "art.psd") and not writable(bob / "other.psd")
    panini(bob, "unlock", "art.psd")
    assert not writable(bob / "art.psd")
    git(bob, "checkout", "-q", "side")
    assert not writable(bob / "art.psd")
    # track --lockable on a pattern tracked before makes it lockable, once.
    panini(bob, "track", "--lockable", "*.bin")
    attributes = (bob / ".gitattributes").read_text().splitlines()
    assert attributes.count("*.bin filter=panini diff=panini merge=panini -text lockable") == 1
    assert not any(line == "*.bin filter=panini diff=panini merge=panini -text" for line in attributes)
    git(bob, "commit", "-q", "-a", "-m", "bin lockable")
    (bob / "data.bin").unlink()
    git(bob, "checkout", "-q", "--", "data.bin")
    assert not writable(bob / "data.bin")


# --- listing, JSON, bad input ---------------------------------------------------------------------------


def test_locks_json_and_bad_input(tmp_path):
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    empty = json.loads(panini(alice, "locks", "--json").stdout)
    assert empty == {"remote": "origin", "locks": [], "malformed_refs": [], "malformed": []}
    (alice / "sub").mkdir()
    (alice / "sub" / "new file.psd").write_text("not committed yet\n")
    out = json.loads(run(["git", "panini", "lock", "--json", "new file.psd", "../art.psd"], cwd=alice / "sub").stdout)
    assert sorted(l["path"] for l in out["locked"]) == ["art.psd", "sub/new file.psd"]
    listed = json.loads(panini(bob, "locks", "--json").stdout)
    assert sorted((l["path"], l["owner"], l["mine"]) for l in listed["locks"]) == \
        [("art.psd", owner("alice"), False), ("sub/new file.psd", owner("alice"), False)]
    for lock in listed["locks"]:
        assert lock["ref"] in remote_locks(bare) and remote_locks(bare)[lock["ref"]] == lock["commit"]
    assert "art.psd" in panini(bob, "locks").stdout
    # A ref under refs/panini/locks/ that holds no lock git-panini wrote (here: a record whose path does not
    # hash to the ref's name) is listed as malformed, never as a lock on some file.
    record = git(bare, "cat-file", "blob", f"{listed['locks'][0]['commit']}:lock.json").stdout
    blob = git(bob, "hash-object", "-w", "--stdin", input=record).stdout.strip()
    tree = git(bob, "mktree", input=f"100644 blob {blob}\tlock.json\n").stdout.strip()
    forged, forged_ref = git(bob, "commit-tree", "-m", "forged", tree).stdout.strip(), LOCK_REFS + "0" * 64
    git(bob, "push", "-q", "--no-verify", "origin", f"{forged}:{forged_ref}")
    listed = json.loads(panini(bob, "locks", "--json").stdout)
    assert len(listed["locks"]) == 2 and listed["malformed_refs"] == [forged_ref]
    # One sitting where other.psd's lock belongs blocks locking it, and says how to clear it.
    other_ref = LOCK_REFS + hashlib.sha256(b"other.psd").hexdigest()
    git(bob, "push", "-q", "--no-verify", "origin", f":{forged_ref}", f"{forged}:{other_ref}")
    line = one_line_error(panini(bob, "lock", "other.psd", check=False), 1)
    assert "holds no readable lock" in line and f":{other_ref}" in line, line
    git(bob, "push", "-q", "--no-verify", "origin", f":{other_ref}")
    # A remote that refuses the push for its own reasons: that reason, not "locked by".
    hook = Path(bare) / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'locks are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    line = one_line_error(panini(bob, "lock", "other.psd", check=False), 1)
    assert "the remote refused the lock" in line and "pre-receive hook declined" in line, line
    hook.unlink()

    # Locking several files is all or none: Bob gets neither when one is Alice's.
    line = one_line_error(panini(bob, "lock", "other.psd", "art.psd", check=False), 1)
    assert "art.psd is locked by" in line
    assert len(remote_locks(bare)) == 2

    assert "no such file" in one_line_error(panini(bob, "lock", "nosuch.psd", check=False), 2)
    assert "outside the repository" in one_line_error(panini(bob, "lock", str(alice / "art.psd"), check=False), 2)
    assert "outside the repository" in one_line_error(panini(bob, "unlock", "../x", check=False), 2)
    assert "cannot reach remote" in one_line_error(panini(bob, "lock", "art.psd", "--remote", "nowhere",
                                                          check=False), 1)
    unreachable = file_url(tmp_path / "gone.git")
    assert "cannot reach remote" in one_line_error(panini(bob, "locks", "--remote", unreachable, check=False), 1)
    lonely = make_repo(tmp_path, name="lonely")
    (lonely / "a.psd").write_text("x\n")
    assert "no remote" in one_line_error(panini(lonely, "lock", "a.psd", check=False), 1)
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    assert "not a git repository" in one_line_error(panini(outside, "locks", check=False), 1)
    # A failed push of a lock names the reason and leaves nothing behind.
    git(bob, "config", "remote.origin.pushurl", unreachable)
    one_line_error(panini(bob, "lock", "other.psd", check=False), 1)
    assert len(remote_locks(bare)) == 2


def test_a_merge_that_reverts_a_locked_file_is_refused(tmp_path):
    """A merge that keeps the other side's version of a locked file changes it as much as an edit does
    (review finding): the pushed tip is compared with the remote's, not only commit by commit."""
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    panini(alice, "lock", "art.psd")
    edit_and_commit(alice, "art.psd", "layered image v2\n" * 100)
    git(alice, "push", "-q", "origin", "HEAD:main")
    edit_and_commit(bob, "notes.txt", "unrelated\n")       # Bob's history predates Alice's change
    git(bob, "fetch", "-q", "origin")
    git(bob, "merge", "-q", "-s", "ours", "-m", "keep mine", "origin/main")
    line = refused_push(git(bob, "push", "-q", "origin", "HEAD:main", check=False))
    assert "art.psd is locked by " + owner("alice") in line, line
    assert git(bare, "rev-parse", "main:art.psd").stdout == git(alice, "rev-parse", "HEAD:art.psd").stdout


def test_a_branch_deleted_and_pushed_again_cannot_carry_a_locked_file(tmp_path):
    """A new ref has no old tip to compare with: it is compared with the remote's default branch, so Bob's
    older version of a file Alice has locked and edited cannot replace hers by deleting a branch and
    creating it again (review finding)."""
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    git(bob, "checkout", "-q", "-b", "feature")
    edit_and_commit(bob, "art.psd", "bob's version\n" * 100)
    git(bob, "push", "-q", "origin", "feature")                   # before any lock
    git(bob, "checkout", "-q", "main")
    panini(alice, "lock", "art.psd")
    edit_and_commit(alice, "art.psd", "layered image v2\n" * 100)
    git(alice, "push", "-q", "origin", "HEAD:main", "HEAD:dev")
    git(bob, "fetch", "-q", "origin")
    refused_push(git(bob, "push", "-q", "--force", "origin", "feature:dev", check=False))
    git(bob, "push", "-q", "origin", ":dev")                      # deleting a branch is not a change
    line = refused_push(git(bob, "push", "-q", "origin", "feature:dev", check=False))
    assert "art.psd is locked by " + owner("alice") in line, line
    assert git(bare, "rev-parse", "--verify", "-q", "dev", check=False).returncode != 0
    git(bob, "push", "-q", "origin", "origin/main:refs/heads/fresh")   # a new branch of main's version: fine


def test_merging_the_lock_owners_pushed_work_is_not_a_change(tmp_path):
    """Bob brings Alice's pushed edit of the file she has locked into his branch: he changes nothing of
    hers, and his push goes through (review finding)."""
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    git(bob, "push", "-q", "origin", "main:dev")
    git(bob, "checkout", "-q", "-b", "dev", "origin/main")
    edit_and_commit(bob, "notes.txt", "bob's notes\n")
    git(bob, "push", "-q", "origin", "dev")
    panini(alice, "lock", "art.psd")
    edit_and_commit(alice, "art.psd", "layered image v2\n" * 100)
    git(alice, "push", "-q", "origin", "HEAD:main")
    git(bob, "fetch", "-q", "origin")
    git(bob, "merge", "-q", "--no-edit", "origin/main")
    git(bob, "push", "-q", "origin", "dev")
    assert git(bare, "rev-parse", "dev:art.psd").stdout == git(alice, "rev-parse", "HEAD:art.psd").stdout


def test_a_lock_whose_owner_and_host_hold_escape_sequences_is_listed_as_text(tmp_path):
    """A lock record is anyone's to write: its owner, host and path reach other people's terminals only as
    visible escapes, one line per lock (no retitled terminal, no fake extra line)."""
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    path = "art\n\x1b[2Jfake.psd"
    record = {"path": path, "owner": "Mallory \x1b]0;pwned\x07<m@x>", "time": "2026-11-29T00:00:00Z",
              "host": "evil\rhost\x9b31m", "id": "0" * 32}
    blob = git(bob, "hash-object", "-w", "--stdin", input=json.dumps(record)).stdout.strip()
    tree = git(bob, "mktree", input=f"100644 blob {blob}\tlock.json\n").stdout.strip()
    commit = git(bob, "commit-tree", "-m", "hostile", tree).stdout.strip()
    git(bob, "push", "-q", "--no-verify", "origin", f"{commit}:{LOCK_REFS}{hashlib.sha256(path.encode()).hexdigest()}")
    out = panini(bob, "locks").stdout
    assert out.count("\n") == 1 and not any(c in out for c in "\x1b\x07\r\x9b"), repr(out)
    assert "art\\x0a\\x1b[2Jfake.psd" in out and "Mallory \\x1b]0;pwned\\x07<m@x>" in out and "evil\\x0dhost\\x9b31m" in out
    assert json.loads(panini(bob, "locks", "--json").stdout)["locks"][0]["owner"] == record["owner"]


def test_a_hostile_lock_path_never_stops_an_honest_push(tmp_path):
    """Conformance seed 22 (hostile actor): a collaborator pushed a lock ref, correctly named by the sha256
    of its path, for '/etc/passwd'. Every honest push then failed: the pre-push check passed that path to
    `git ls-tree`, which refuses a path outside the repository. A recorded path no clone could have locked
    (absolute, '..', '.', an empty part, under .git) is a malformed ref, not a lock."""
    bare, url = make_bare(tmp_path)
    alice, bob = setup_team(tmp_path, url)
    paths = ["/etc/passwd", "../outside.bin", ".git/config", "a//b", "./art.psd"]
    refs = []
    for path in paths:
        record = json.dumps({"host": "h", "id": "1", "owner": "M <m@x>", "path": path, "time": "2000-01-01T00:00:00Z"})
        blob = git(bob, "hash-object", "-w", "--stdin", input=record).stdout.strip()
        tree = git(bob, "mktree", input=f"100644 blob {blob}\tlock.json\n").stdout.strip()
        commit = git(bob, "commit-tree", "-m", f"git-panini lock: {path}", tree).stdout.strip()
        refs.append(LOCK_REFS + hashlib.sha256(path.encode()).hexdigest())
        git(bob, "push", "-q", "--no-verify", "origin", f"{commit}:{refs[-1]}")
    listed = json.loads(panini(alice, "locks", "--json").stdout)
    assert listed["locks"] == [] and sorted(listed["malformed_refs"]) == sorted(refs)
    (alice / "data.bin").write_bytes(os.urandom(4096))
    git(alice, "commit", "-q", "-a", "-m", "more")
    git(alice, "push", "-q", "origin", "main")     # failed before: git ls-tree ... -- /etc/passwd
