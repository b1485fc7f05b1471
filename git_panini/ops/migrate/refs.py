"""The refs a rewrite moves: which ones, the checks before, the backup of their old tips, the staging
repository fast-import writes into, and the one compare-and-swap transaction that moves them."""

from __future__ import annotations

import os
import subprocess
import time

from .errors import MigrateError

BACKUP_PREFIX = "refs/panini-migrate/"


def resolve_refs(repo, refs: list[str], everything: bool) -> list[str]:
    """Full names of the branches and tags to rewrite: those given, every one (--everything), or HEAD's branch."""
    if everything:
        if refs:
            raise MigrateError("give REFs or --everything, not both", usage=True)
        out = repo.git("for-each-ref", "--format=%(refname)", "refs/heads/", "refs/tags/").stdout.decode().split()
        if not out:
            raise MigrateError("nothing to migrate: no branch or tag has a commit")
        return out
    if not refs:
        head = repo.git("symbolic-ref", "-q", "HEAD", check=False).stdout.decode().strip()
        if not head:
            raise MigrateError("HEAD is detached: name the branches to rewrite, or use --everything", usage=True)
        if repo.ref(head) is None:
            raise MigrateError(f"nothing to migrate: {head} has no commit yet")
        return [head]
    names = []
    for ref in refs:
        proc = repo.git("rev-parse", "--verify", "--quiet", "--symbolic-full-name", "--end-of-options", ref,
                        check=False)
        name = proc.stdout.decode().strip()
        if proc.returncode != 0 or not name.startswith(("refs/heads/", "refs/tags/")):
            raise MigrateError(f"unknown branch or tag {ref!r}", usage=True)
        names.append(name)
    return sorted(set(names))


def require_clean(repo):
    """Refuse a working tree whose changes `git reset --hard` would throw away after the rewrite."""
    if repo.work_tree is None:
        return
    proc = repo.git("status", "--porcelain", "-z", "--untracked-files=no")
    if proc.stdout.strip(b"\0"):
        raise MigrateError("the working tree has uncommitted changes: commit or stash them first")
    if os.path.exists(os.path.join(repo.work_tree, ".gitattributes")) and \
            repo.git("ls-files", "--error-unmatch", "--", ".gitattributes", check=False).returncode != 0:
        raise MigrateError(".gitattributes is not committed: commit or move it first")


def backup(repo, refs: list[str]) -> tuple[str, dict[str, str]]:
    """Keep the old tips under refs/panini-migrate/<time>/<ref> (what `git panini migrate` prints to undo)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"{BACKUP_PREFIX}{stamp}/"
    n = 1
    while repo.git("for-each-ref", "--count=1", prefix, check=False).stdout.strip():
        n += 1
        prefix = f"{BACKUP_PREFIX}{stamp}-{n}/"
    tips = {}
    for ref in refs:
        tips[ref] = repo.git("rev-parse", "--verify", ref).stdout.decode().strip()
    repo.git("update-ref", "--stdin", input="".join(f"create {prefix}{r} {o}\n" for r, o in tips.items()).encode())
    return prefix, tips


def drop_backup(repo, prefix: str, tips: dict[str, str]):
    """Remove the backup refs again (nothing was rewritten: nothing to undo)."""
    repo.git("update-ref", "--stdin", input="".join(f"delete {prefix}{r}\n" for r in tips).encode(), check=False)


def refuse_other_worktrees(repo, names: list[str]):
    """A branch checked out in another worktree would have its old files staged there as changes by the
    rewrite, and committed back by the next commit: refuse, as `git branch -f` does."""
    here = os.path.realpath(repo.work_tree) if repo.work_tree else None
    out = repo.git("worktree", "list", "--porcelain", "-z").stdout.decode("utf-8", "surrogateescape")
    tree = None
    for line in out.split("\0"):
        if line.startswith("worktree "):
            tree = line[len("worktree "):]
        elif line.startswith("branch ") and line[len("branch "):] in names and os.path.realpath(tree) != here:
            raise MigrateError(f"{line[len('branch '):]} is checked out in the worktree {tree}: "
                               "switch it to another branch (or migrate from there) first")


def staging_repo(repo, prefix: str) -> str:
    """An empty bare repository under .git/panini/ that sees this one's objects (alternates): fast-import
    writes there, so nothing here changes before the rewrite is complete."""
    path = os.path.join(repo.panini_dir, "migrate-" + prefix[len(BACKUP_PREFIX):].strip("/"))
    fmt = "sha256" if repo.hex_len == 64 else "sha1"
    subprocess.run(["git", "init", "-q", "--bare", f"--object-format={fmt}", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(path, "objects", "info", "alternates"), "w", encoding="utf-8") as f:
        f.write(os.path.abspath(repo.objects_dir) + "\n")
    return path


def _move_objects(source: str, target: str):
    """Move a repository's objects into another's (same file system): packs, and the loose objects fast-import
    unpacks a small import into. A pack's .pack (and .rev) go before its .idx: git finds a pack by its index."""
    packs = os.path.join(source, "pack")
    for name in sorted(os.listdir(packs), key=lambda n: n.endswith(".idx")):
        if name.endswith((".pack", ".rev", ".idx")):
            os.replace(os.path.join(packs, name), os.path.join(target, "pack", name))
    for fan in os.listdir(source):
        if len(fan) == 2 and os.path.isdir(os.path.join(source, fan)):
            os.makedirs(os.path.join(target, fan), exist_ok=True)
            for name in os.listdir(os.path.join(source, fan)):
                os.replace(os.path.join(source, fan, name), os.path.join(target, fan, name))


def move_refs(repo, staging: str, tips: dict[str, str]) -> list[str]:
    """Bring the staging repository's packs in, then move every rewritten ref from its old tip to its new one
    in one transaction (none moves if any of them changed since the start). Returns the refs that moved."""
    out = subprocess.run(["git", "--git-dir", staging, "for-each-ref", "--format=%(objectname) %(refname)"],
                         check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")
    new = {ref: oid for oid, ref in (line.split(" ", 1) for line in out.splitlines())}
    moves = {ref: new[ref] for ref in tips if new.get(ref, tips[ref]) != tips[ref]}
    if not moves:
        return []
    _move_objects(os.path.join(staging, "objects"), repo.objects_dir)
    proc = repo.git("update-ref", "--stdin", check=False,
                    input="".join(f"update {ref} {oid} {tips[ref]}\n" for ref, oid in moves.items()).encode())
    if proc.returncode != 0:
        moved = [ref for ref in moves if repo.ref(ref) != tips[ref]]
        raise MigrateError(f"{', '.join(moved) or 'a ref'} changed while migrating (a commit made meanwhile?): "
                           "no ref was rewritten; run it again")
    return list(moves)
