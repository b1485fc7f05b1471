"""Git hooks: what ours do when they run (pre-push, post-checkout, post-merge, pre-commit, post-commit);
installing them is hook_files'."""

from __future__ import annotations

import os
import sys

from ..git.tree_edit import TreeEditor
from ..store import journal
from ..store.chunk_source import ChunkSource
from ..store.local import LocalStore
from ..store.shared import fan
from ..transfer import locks
from ..transfer.publish import referenced_manifests
from ..transfer.remote import DamagedRemote, default_remote
from ..transfer.sync import SyncError, fetch, push
from ..util.errors import warn
from . import unavailable
from .hook_files import HOOK_NAMES
from .markers import LOST, NEEDS_FETCH, REFETCH_ENV

def run(repo, name: str, args: list[str], stdin: bytes) -> int:
    """Our part of a hook (the shell script has already run the user's chained `<name>.local`)."""
    return {"pre-push": _pre_push, "post-checkout": _after_checkout, "post-merge": _after_checkout,
            "pre-commit": _refuse_lost, "post-commit": _replay_journal}[name](repo, args, stdin)


def _pre_push(repo, args, stdin: bytes) -> int:
    """Publish the data the pushed commits need (and only that), before Git pushes the branch."""
    remote = args[0] if args else default_remote(repo)
    if remote is None:
        warn("refusing to push: no remote to send the file data to")
        return 1
    zero = "0" * repo.hex_len
    pushed, known, tips = [], [], []
    for line in stdin.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] != zero:
            pushed.append(parts[1])
            if parts[3] != zero and repo.exists(parts[3]):
                known.append(parts[3])
                tips.append((parts[1], parts[3]))
            elif parts[3] == zero:
                tips.append((parts[1], None))   # a new ref on the remote
    if not pushed:
        return 0   # only deletions
    # What the remote's branches (as last fetched) already hold needs no publishing again.
    names = repo.git("remote").stdout.decode().split()
    revs = pushed + ["--not", *known] + ([f"--remotes={remote}"] if remote in names else [])
    refused = locks.refuse_locked_changes(repo, remote, revs, tips)
    if refused:
        warn(f"refusing to push: {refused}")
        return 1
    try:
        push(repo, remote, revs=revs)
    except DamagedRemote as e:
        return _push_past_damage(repo, revs, e)
    except SyncError as e:
        warn(f"refusing to push: {e}")
        return 1
    return 0


def _push_past_damage(repo, revs: list[str], damage: DamagedRemote) -> int:
    """The remote's store or notes ref is not a commit (pushed there by hand, or by a hostile writer): no
    file data can be published there until it is repaired. A push whose commits add no git-panini file
    needs none and goes on, with one warning line, so one damaged ref does not stop every push of every
    clone; one that adds such a file is refused, since its pointers would name data the remote never got."""
    try:
        needed = referenced_manifests(repo, revs)
    except SyncError as e:
        warn(f"refusing to push: {e}")
        return 1
    if needed:
        warn(f"refusing to push: {damage}")
        return 1
    warn(f"warning: {damage}; this push adds no git-panini file, so it goes on")
    return 0


def _after_checkout(repo, args, stdin) -> int:
    """Fetch what a smudge lacked, then make lockable files we hold no lock on read-only."""
    code = _refetch_missing(repo, args, stdin)
    locks.protect_lockable(repo)
    return code


def _refetch_missing(repo, args, stdin) -> int:
    """A smudge found chunks missing (the filter left a list of paths): fetch, then check them out again."""
    if os.environ.get(REFETCH_ENV):
        return 0   # the checkout of our own retry below: one retry per marker, never a loop
    marker = os.path.join(repo.panini_dir, NEEDS_FETCH)
    try:
        with open(marker, encoding="utf-8") as f:
            paths = sorted({line.rstrip("\n") for line in f if line.strip()})
        os.remove(marker)
    except FileNotFoundError:
        return 0
    remote = default_remote(repo)
    if remote is None:
        warn(f"{len(paths)} file(s) could not be checked out (chunks missing) and no remote is configured")
        return 0
    try:
        fetch(repo, remote)
    except SyncError as e:
        warn(f"{len(paths)} file(s) lack chunks and fetching failed: {e}")
        return 0
    # Only files the failed smudge left absent or as their pointer text (recorded, and still exactly that):
    # never overwrite what is in the working tree. A pointer-text file is removed first, or git, seeing it
    # match the index, would leave it alone. Literal pathspecs: a file named ':!x' or 'a[1].bin' must name
    # itself, never other files.
    tracked = set(repo.git("--literal-pathspecs", "ls-files", "-z", "--", *paths).stdout.decode().split("\0"))
    left = unavailable.current(repo)
    paths = [p for p in paths if p in tracked and (p in left or not os.path.lexists(os.path.join(repo.work_tree, p)))]
    if not paths:
        return 0
    for p in paths:
        if p in left:
            os.remove(os.path.join(repo.work_tree, p))
    proc = repo.git("--literal-pathspecs", "checkout", "--", *paths, check=False,
                    env={**os.environ, REFETCH_ENV: "1"})
    still = [p for p in paths if p in unavailable.current(repo) or not os.path.lexists(os.path.join(repo.work_tree, p))]
    if proc.returncode != 0 or still:
        warn(f"after fetching from {remote}, {len(still) or len(paths)} file(s) still cannot be checked out "
             "(see git panini status; git panini checkout tries again)")
    return 0




def _replay(repo) -> list[tuple[str, str]] | None:
    """journal.replay()'s lost files; None, said in one line, when it cannot write (a full disk)."""
    try:
        return journal.replay(repo)[1]
    except OSError as e:
        warn(f"could not record what a crashed git add left in .git/panini ({e.strerror or e}); "
             "it stays there until a commit can: free some space")
        return None


def _replay_journal(repo, args, stdin) -> int:
    """post-commit (after `git commit --no-verify` too): record what crashed filters left intact; lockable
    files just committed become read-only unless we hold their lock (as after a checkout, and git-lfs)."""
    locks.protect_lockable(repo)
    new = _replay(repo)
    if new is None:
        return 0
    for path, _ in _remember_lost(repo, new):
        warn(f"{path}: its data was lost with a crashed filter; add it again: git add --renormalize -- '{path}'")
    return 0


def _refuse_lost(repo, args, stdin) -> int:
    """pre-commit: record what crashed filters left intact, and refuse to commit a staged pointer whose
    data died with one, until the file is added again (it is still in the working tree). Remembered
    in .git/panini/lost until then, so a second `git commit` is refused too."""
    from ..format.pointer_scan import in_index
    new = _replay(repo)
    if new is None:
        return 1   # what is lost cannot be told yet
    lost = _remember_lost(repo, new)
    local = LocalStore(repo)
    kept = TreeEditor(repo, local.tree_of(local.tip()))
    index = {f.pointer.manifest: f.path for f in in_index(repo) if f.pointer} if lost else {}
    staged = []
    source = ChunkSource(repo) if lost else None
    for path, manifest in lost:
        if kept.get("manifests/" + fan(manifest)) is not None and journal.intact_chunks(repo, manifest, source) is not None:
            continue   # added again since (the same content makes the same manifest): resolved
        if manifest in index:   # staged, under this path or another (git mv)
            staged.append((index[manifest], manifest))
        elif (path, manifest) in new:
            warn(f"{path}: its data was lost with a crashed filter; add it again: git add --renormalize -- '{path}'")
    if source is not None:
        source.close()
    _write_lost(repo, staged)
    for path, _ in staged:
        warn(f"{path}: the git add that staged it was killed before its data was kept; "
             f"add it again: git add --renormalize -- '{path}'")
    return 1 if staged else 0


def _remember_lost(repo, new: list[tuple[str, str]]) -> list[tuple[str, str]]:
    path = os.path.join(repo.panini_dir, LOST)
    try:
        with open(path, encoding="utf-8") as f:
            known = [tuple(line.rstrip("\n").rsplit("\t", 1)) for line in f if "\t" in line]
    except FileNotFoundError:
        known = []
    merged = list(dict.fromkeys(known + list(new)))
    _write_lost(repo, merged)
    return merged


def _write_lost(repo, entries: list[tuple[str, str]]):
    path = os.path.join(repo.panini_dir, LOST)
    if not entries:
        if os.path.exists(path):
            os.remove(path)
        return
    os.makedirs(repo.panini_dir, exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.writelines(f"{p}\t{m}\n" for p, m in entries)
    os.replace(path + ".tmp", path)


def main(name: str, args: list[str]) -> int:
    """`git-panini hook NAME ARGS...`, as the hook scripts call it."""
    from ..git.repo import NotARepository, Repo
    if name not in HOOK_NAMES:
        warn(f"unknown hook {name!r}")
        return 2
    try:
        repo = Repo(".")
    except NotARepository as e:
        warn(str(e))
        return 1
    stdin = b"" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    return run(repo, name, args, stdin)
