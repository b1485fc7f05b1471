"""Locks kept in the Git remote itself: one ref per locked path, created and deleted by compare-and-swap pushes.

A lock is `refs/panini/locks/<sha256 of the path>` on the remote, pointing at a parentless commit whose
tree holds `lock.json` (path, owner, time, host, a random id). Taking it is a push that the remote
accepts only if that ref does not exist yet (`--force-with-lease=<ref>:`), so of two clones racing for
one path exactly one wins; releasing it is a push that deletes the ref only if it still points at that
very commit. The owner is the committer identity (`user.name <user.email>`). Nothing is fetched into
shared refs: listing reads the remote's refs with one `ls-remote`, and fetches lock commits it lacks
into refs private to this process, dropped at once.

Files with the `lockable` attribute are read-only in the working tree unless we hold their lock (as
git-lfs does); which locks we hold is remembered in .git/panini/locks-held.json, so a checkout knows
without asking the remote.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from ..git.objects import MODE_BLOB, ObjectFormatError, TreeEntry, commit_tree_and_parents, encode_tree
from ..git.repo import GitError, ObjectTooLarge, first_error_line
from .remote import SyncError
from .sync import drop_private, private_prefix, remote_refs

LOCK_REFS = "refs/panini/locks/"
RECORD = "lock.json"
MAX_OBJECT = 64 << 10     # a lock commit, tree or record is a few hundred bytes; a larger one is not ours
HELD = "locks-held.json"  # .git/panini/: {path: {"remote", "commit", "owner"}} for the locks we hold
# What a push says when the remote refused an update because the ref is not as expected (someone else's
# lock got there first, or the lock changed since we read it), as opposed to an unreachable remote.
_LOST_RACE = ("stale info", "rejected", "already exists", "fetch first", "cannot lock ref", "failed to update",
              "atomic")


class LockError(Exception):
    """A lock operation failed (one line); code 2 for a bad path, 1 otherwise."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Lock:
    path: str
    owner: str
    time: str      # UTC, ISO 8601
    host: str
    commit: str    # the lock commit: what an unlock's lease expects

    @property
    def ref(self) -> str:
        return lock_ref(self.path)

    def as_json(self, me: str | None) -> dict:
        return {"path": self.path, "owner": self.owner, "time": self.time, "host": self.host, "ref": self.ref,
                "commit": self.commit, "mine": self.owner == me}


def lock_ref(path: str) -> str:
    return LOCK_REFS + hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


def identity(repo) -> str:
    """`Name <email>` of the committer Git would record here (the lock owner)."""
    proc = repo.git("var", "GIT_COMMITTER_IDENT", check=False)
    if proc.returncode != 0:
        raise LockError("no committer identity: set user.name and user.email (the lock owner)")
    return proc.stdout.decode(errors="replace").strip().rsplit(" ", 2)[0]


# --- paths ---------------------------------------------------------------------------------------


def repo_path(repo, path: str) -> str:
    """`path` (relative to the current directory) as the repository names it: relative to its top,
    '/'-separated, so every clone computes the same lock ref. A path outside the work tree is refused."""
    if repo.work_tree is None:
        raise LockError("locks need a working tree", code=2)
    absolute = os.path.abspath(path)
    # Resolve links in the directories (a checkout reached through a symlink), not in the file itself.
    full = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    relative = os.path.relpath(full, os.path.realpath(repo.work_tree))
    if relative == "." or relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative):
        raise LockError(f"{path}: outside the repository", code=2)
    relative = relative.replace(os.sep, "/")
    if relative == ".git" or relative.startswith(".git/"):
        raise LockError(f"{path}: inside .git", code=2)
    return relative


def known_paths(repo, paths: list[str]) -> None:
    """Refuse a path that is neither a file Git tracks nor a file in the working tree (a typo, a directory)."""
    tracked = set(repo.git("--literal-pathspecs", "ls-files", "-z", "--", *paths).stdout
                  .decode("utf-8", "surrogateescape").split("\0"))
    for path in paths:
        if path not in tracked and not os.path.isfile(os.path.join(repo.work_tree, path)):
            raise LockError(f"{path}: no such file in the repository", code=2)


# --- the remote's locks ----------------------------------------------------------------------------


def _read_lock(repo, ref: str, commit: str) -> Lock | None:
    """The lock a ref points at, or None when it is not a lock git-panini wrote for the path it names."""
    try:
        data = repo.read_kind(commit, "commit", MAX_OBJECT)
        if data is None:
            return None
        tree, _ = commit_tree_and_parents(data)
        entry = next((e for e in repo.read_tree(tree) if e.name == RECORD), None)
        blob = repo.read_kind(entry.oid, "blob", MAX_OBJECT) if entry else None
        record = json.loads(blob) if blob else None
    except (ObjectTooLarge, ObjectFormatError, GitError, ValueError, RecursionError):   # RecursionError: hostile nesting
        return None
    fields = ("path", "owner", "time", "host")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields):
        return None
    if not _is_repo_path(record["path"]):
        return None   # a path no clone can lock ("/etc/passwd", "../x", ".git/config"): git itself refuses it
    lock = Lock(record["path"], record["owner"], record["time"], record["host"], commit)
    return lock if lock.ref == ref else None


def _is_repo_path(path: str) -> bool:
    """A path as `lock` records it: relative to the top of the work tree, '/'-separated, no empty, '.' or '..'
    part, not under .git (any other character git allows in a path, a newline included, is fine)."""
    parts = path.split("/")
    return bool(path) and not any(p in ("", ".", "..") for p in parts) and parts[0].lower() != ".git"


def _fetch_lock_refs(repo, remote: str) -> dict[str, str]:
    """{ref: commit} of the remote's locks, with their objects, through refs private to this process."""
    prefix = private_prefix()
    try:
        proc = repo.git("-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags",
                        "--no-write-fetch-head", "--no-auto-gc", "--no-recurse-submodules", remote,
                        f"+{LOCK_REFS}*:{prefix}*", check=False)
        if proc.returncode != 0:
            reason = first_error_line(proc.stderr, proc.returncode)
            raise LockError(f"fetching the locks of '{remote}' failed: {reason}")
        out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", prefix).stdout.decode()
        return {LOCK_REFS + ref[len(prefix):]: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}
    finally:
        drop_private(repo, prefix)


def remote_locks(repo, remote: str) -> tuple[dict[str, Lock], list[str]]:
    """The remote's locks by path, and the refs under refs/panini/locks/ that hold no readable lock.
    One ls-remote; a fetch only when some lock commit is not here yet."""
    try:
        refs = remote_refs(repo, remote, LOCK_REFS)
    except SyncError as e:
        raise LockError(str(e)) from None
    if not refs:
        return {}, []
    if not all(repo.exists(commit) for commit in refs.values()):
        refs = _fetch_lock_refs(repo, remote)
    locks, malformed = {}, []
    for ref, commit in sorted(refs.items()):
        lock = _read_lock(repo, ref, commit)
        if lock is None:
            malformed.append(ref)
        else:
            locks[lock.path] = lock
    return locks, malformed


def _push(repo, remote: str, leases: list[str], specs: list[str]) -> str | None:
    """One atomic push of lock refs, every one under a lease. None when it went through; the remote's
    reason when it refused an update (the ref was not as expected: a lost race); LockError when the push
    failed otherwise."""
    proc = repo.git("push", "--quiet", "--porcelain", "--no-verify", "--atomic", *leases, remote, *specs, check=False)
    if proc.returncode == 0:
        return None
    said = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    if any(s in said for s in _LOST_RACE):
        # Porcelain: "!<TAB>from:to<TAB>[rejected] (reason)" for each refused ref.
        refused = [line.split("\t")[-1] for line in said.splitlines() if line.startswith("!") and "\t" in line]
        return refused[0] if refused else "rejected"
    raise LockError(f"pushing to '{remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")


def _held_by(lock: Lock) -> str:
    return f"{lock.path} is locked by {lock.owner} since {lock.time} (on {lock.host})"


def _others(locks: list[Lock]) -> str:
    return _held_by(locks[0]) + (f" (and {len(locks) - 1} more locked file(s))" if len(locks) > 1 else "")


# --- lock and unlock ---------------------------------------------------------------------------------


def _new_lock_commit(repo, path: str, owner: str) -> Lock:
    # The random id makes every attempt a distinct commit: two identical lock commits racing would both
    # look "up to date" to the remote, and both pushes would succeed.
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    host = socket.gethostname()
    record = {"path": path, "owner": owner, "time": now, "host": host, "id": uuid.uuid4().hex}
    blob = repo.write_object("blob", (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    tree = repo.write_object("tree", encode_tree([TreeEntry(RECORD, MODE_BLOB, blob)]))
    commit = repo.git("commit-tree", tree, "-m", f"git-panini lock: {path}").stdout.decode().strip()
    return Lock(path, owner, now, host, commit)


def lock(repo, remote: str, paths: list[str]) -> tuple[list[Lock], list[Lock]]:
    """Take the locks on these repository paths, all or none. Returns (taken now, already ours)."""
    me = identity(repo)
    paths = list(dict.fromkeys(paths))
    current, malformed = remote_locks(repo, remote)
    theirs = [current[p] for p in paths if p in current and current[p].owner != me]
    if theirs:
        raise LockError(_others(theirs))
    blocked = [p for p in paths if lock_ref(p) in malformed]
    if blocked:
        raise LockError(f"{blocked[0]}: {lock_ref(blocked[0])} on '{remote}' holds no readable lock; "
                        f"delete it first: git push {remote} :{lock_ref(blocked[0])}")
    ours = [current[p] for p in paths if p in current]
    new = [_new_lock_commit(repo, p, me) for p in paths if p not in current]
    refused = new and _push(repo, remote, [f"--force-with-lease={l.ref}:" for l in new],
                            [f"{l.commit}:{l.ref}" for l in new])
    if refused:
        current, _ = remote_locks(repo, remote)
        theirs = [current[l.path] for l in new if l.path in current and current[l.path].owner != me]
        raise LockError(_others(theirs) if theirs else f"the remote refused the lock: {refused}; try again")
    _remember(repo, remote, new + ours)
    for held in new + ours:
        set_writable(repo, held.path, True)
    return new, ours


def unlock(repo, remote: str, paths: list[str], force: bool = False) -> list[Lock]:
    """Release the locks on these paths, all or none; another user's only with force."""
    me = identity(repo)
    paths = list(dict.fromkeys(paths))
    current, _ = remote_locks(repo, remote)
    absent = [p for p in paths if p not in current]
    if absent:
        _forget(repo, remote, absent)   # released by someone else (--force) since we took it
        raise LockError(f"{absent[0]} is not locked on '{remote}'")
    locks = [current[p] for p in paths]
    theirs = [l for l in locks if l.owner != me]
    if theirs and not force:
        raise LockError(f"{_held_by(theirs[0])}; only --force releases another user's lock")
    dirty = [] if force else _uncommitted(repo, paths)
    if dirty:   # as git-lfs: releasing it now would let someone else change it under your edit
        raise LockError(f"{dirty[0]} has uncommitted changes; commit (and push) them first, or unlock --force")
    refused = _push(repo, remote, [f"--force-with-lease={l.ref}:{l.commit}" for l in locks],
                    [f":{l.ref}" for l in locks])
    if refused:
        raise LockError(f"the remote refused the unlock: {refused} (the lock changed since it was read: "
                        "see `git panini locks`)")
    _forget(repo, remote, paths)
    lockable = set(lockable_paths(repo, paths))
    for path in paths:
        if path in lockable:
            set_writable(repo, path, False)
    return locks


def _uncommitted(repo, paths: list[str]) -> list[str]:
    out = repo.git("--literal-pathspecs", "status", "--porcelain", "-z", "--untracked-files=no", "--no-renames",
                   "--", *paths).stdout.decode("utf-8", "surrogateescape")
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3]


def list_locks(repo, remote: str) -> tuple[list[Lock], list[str]]:
    """The remote's locks (and malformed lock refs); what we hold there is remembered for checkouts."""
    current, malformed = remote_locks(repo, remote)
    me = identity(repo)
    held = {path: entry for path, entry in _held(repo).items() if entry.get("remote") != remote}
    held |= {l.path: _entry(remote, l) for l in current.values() if l.owner == me}
    _write_held(repo, held)
    return list(current.values()), malformed


def _blobs_at(repo, commit: str, paths: list[str]) -> dict[str, str]:
    out = repo.git("--literal-pathspecs", "ls-tree", "-r", "-z", commit, "--", *paths).stdout
    blobs = {}
    for record in out.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = record.partition("\t")
        if path:
            blobs[path] = meta.split()[2]
    return blobs


def _remote_tips(repo, remote: str) -> dict[str, str]:
    """The remote's branches as last fetched here: {name: commit} ("HEAD": its default branch)."""
    prefix = f"refs/remotes/{remote}/"
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)", prefix).stdout.decode("utf-8", "surrogateescape")
    return {ref[len(prefix):]: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}


def _versions(repo, tip: str, path: str) -> set[str | None]:
    """Every blob id the path has had in tip's history (None: absent)."""
    out = repo.git("--literal-pathspecs", "log", "--raw", "--no-abbrev", "--no-renames", "--diff-merges=separate",
                   "--format=", tip, "--", path).stdout.decode("utf-8", "surrogateescape")
    ids = {i for line in out.splitlines() if line.startswith(":") for i in line.split("\t")[0].split()[2:4]}
    return {None if set(i) == {"0"} else i for i in ids}


def _brought_in(repo, remote_tips: dict[str, str], new: str, path: str, before: str | None,
                after: str | None) -> bool:
    """Whether the pushed tip's version of a locked path only brings in what the remote already has, newer
    than the version it replaces: a remote branch that the pushed commit contains holds it, and that branch's
    history of the path went through the replaced version (a merge of the lock owner's pushed work)."""
    for tip in sorted(set(remote_tips.values())):
        if _blobs_at(repo, tip, [path]).get(path) != after:
            continue
        if repo.git("merge-base", "--is-ancestor", tip, new, check=False).returncode != 0:
            continue
        if before is None or before in _versions(repo, tip, path):
            return True
    return False


def refuse_locked_changes(repo, remote: str, revs: list[str],
                          tips: list[tuple[str, str | None]] = ()) -> str | None:
    """pre-push: why the commits `revs` names may not go to `remote` (they change a file someone else has
    locked there), or None. `tips`: (pushed commit, the remote ref's current commit, None for a new ref)
    pairs; a locked file that differs between them is a change too, however the history got there (a
    merge that keeps the other side's version, a forced rewind, another branch pushed onto this one),
    unless the new version is the lock owner's, already on the remote and newer than the one it replaces.
    Costs one ls-remote when the remote has no locks."""
    try:
        current, _ = remote_locks(repo, remote)
    except LockError as e:
        return str(e)
    if not current:
        return None
    try:
        me = identity(repo)
    except LockError:
        me = None   # no identity: every lock is someone else's
    theirs = {path: l for path, l in current.items() if l.owner != me}
    if not theirs:
        return None
    # Every path the pushed commits change (merges: only what they change against every parent,
    # i.e. their own resolutions, not what they bring in from a branch the lock owner already pushed).
    out = repo.git("log", "-z", "--name-only", "--format=", "--no-renames", "--diff-merges=combined", *revs).stdout
    changed = {p.lstrip("\n") for p in out.decode("utf-8", "surrogateescape").split("\0")}
    hit = {path for path in theirs if path in changed}
    remote_tips = _remote_tips(repo, remote)
    for new, old in tips:
        # A new ref is compared with the remote's default branch: a branch deleted and pushed again, or any
        # new one, may not carry a version the lock owner has not seen either.
        old = old or remote_tips.get("HEAD")
        if old is None:
            continue
        before, after = _blobs_at(repo, old, sorted(theirs)), _blobs_at(repo, new, sorted(theirs))
        hit |= {path for path in theirs if before.get(path) != after.get(path)
                and not _brought_in(repo, remote_tips, new, path, before.get(path), after.get(path))}
    hit = sorted(hit)
    if not hit:
        return None
    return (_others([theirs[p] for p in hit]) + f" on '{remote}'; they must unlock it first "
            "(or an admin: git panini unlock --force)")


# --- read-only lockable files ----------------------------------------------------------------------


def lockable_paths(repo, paths: list[str] | None = None) -> list[str]:
    """Tracked files with the `lockable` attribute (among `paths`, if given)."""
    if paths is not None:
        if not paths:
            return []
        out = repo.git("check-attr", "-z", "lockable", "--", *paths).stdout.decode("utf-8", "surrogateescape")
        fields = out.split("\0")
        return [fields[i] for i in range(0, len(fields) - 2, 3) if fields[i + 2] == "set"]
    out = repo.git("ls-files", "-z", "--", ":(attr:lockable)").stdout.decode("utf-8", "surrogateescape")
    return [p for p in out.split("\0") if p]


def set_writable(repo, path: str, writable: bool) -> None:
    full = os.path.join(repo.work_tree, path)
    try:
        mode = os.lstat(full).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        return
    new = mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    if new != mode:
        try:
            os.chmod(full, stat.S_IMODE(new))
        except PermissionError:
            pass   # another user's file in a shared checkout: its mode is theirs to set


def protect_lockable(repo) -> None:
    """After a checkout or merge: lockable files we hold no lock on are read-only (Git wrote them writable)."""
    if repo.work_tree is None:
        return
    paths = lockable_paths(repo)
    if not paths:
        return
    try:
        me = identity(repo)
    except LockError:
        me = None
    held = {path for path, entry in _held(repo).items() if entry.get("owner") == me}
    for path in paths:
        if path not in held:
            set_writable(repo, path, False)


# --- the locks we hold (read by checkouts, without the network) ---------------------------------------


def _held_file(repo) -> str:
    return os.path.join(repo.panini_dir, HELD)


def _held(repo) -> dict[str, dict]:
    try:
        with open(_held_file(repo), encoding="utf-8") as f:
            held = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    return held if isinstance(held, dict) else {}


def _write_held(repo, held: dict[str, dict]) -> None:
    os.makedirs(repo.panini_dir, exist_ok=True)
    path = _held_file(repo)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(held, f, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _entry(remote: str, lock: Lock) -> dict:
    return {"remote": remote, "commit": lock.commit, "owner": lock.owner}


def _remember(repo, remote: str, locks: list[Lock]) -> None:
    _write_held(repo, _held(repo) | {l.path: _entry(remote, l) for l in locks})


def _forget(repo, remote: str, paths: list[str]) -> None:
    held = _held(repo)
    _write_held(repo, {p: e for p, e in held.items() if not (p in paths and e.get("remote") == remote)})
