"""Moves the store and the notes between a repository and its remotes: fetch-merge, fetch by id, and push.

- fetch: one `git fetch` of the remote's store and notes tips into refs private to this process,
  so the tips merged are exactly the ones fetched (a sibling process cannot swap them), then a
  validated merge into ours. Both refs are chains, so only what is new moves.
- fetch_objects: blobs by id (pack data, raw chunks), all of a checkout's in one request.
- push: publish what the pushed commits need (publish.py), then one atomic push of the store,
  the notes and the bulk refs. The store and notes are pushed without force: the remote accepts
  them only if they descend from the tips we merged, so a writer that got in first makes us
  fetch, merge and try again, and nobody's entries are ever overwritten.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid

from ..git.repo import GitError, ObjectTooLarge, first_error_line
from ..git.tree_edit import TreeEditor
from ..store.chunk_index import ChunkIndex, changed_leaves
from ..store.legacy.format1 import convert, is_v1, upgrade_local
from ..store.notes import NOTES_REF, Notes
from ..store.shared import PACK_REFS, RAW_REFS, STORE_REF, Store, bulk_list_path, pack_path, raw_list_path
from ..util.errors import warn
from ..util.units import human
from .publish import Outgoing, prepare, prepare_repair
from .remote import DamagedRemote, RemoteState, RemoteSurvey, SyncError


def private_prefix() -> str:
    return f"refs/panini/fetch/{os.getpid()}-{uuid.uuid4().hex[:8]}/"


def fetch(repo, remote: str, repair: bool = False, tips: dict[str, tuple[str, str]] | None = None) -> RemoteState:
    """Fetch the remote's store and notes, merge them into ours; return them as fetched. A ref of the
    two that is not a commit raises DamagedRemote (repair: it is treated as absent, and recorded in
    state.broken for the push that replaces it). tips: those a survey() found, whose objects are here."""
    upgrade_local(repo)
    prefix = private_prefix()
    if tips is None:
        tips = fetch_tips(repo, remote, prefix)
    broken = {ref: (kind, oid) for ref, (kind, oid) in tips.items() if kind != "commit"}
    if broken and not repair:
        drop_private(repo, prefix)
        ref, (kind, _) = sorted(broken.items())[0]
        raise DamagedRemote(damage(remote, ref, kind))
    commits = {ref: oid for ref, (kind, oid) in tips.items() if kind == "commit"}
    state = RemoteState(remote, commits.get(STORE_REF), commits.get(NOTES_REF),
                        broken={ref: oid for ref, (_, oid) in broken.items()})
    try:
        store, notes = Store(repo), Notes(repo)
        if state.store and is_v1(repo, state.store):
            # A format-1 snapshot: converted, merged into ours, and replaced on the remote by the next push.
            state.replace, state.store = state.store, None
            state.base_tree, state.bulk = convert(repo, state.replace)
            store.absorb(state.base_tree, f"panini: convert the format-1 store of {remote}")
        elif state.store:
            store.merge_from(state.store, f"panini: merge store from {remote}")
            state.base_tree = store.tree_of(state.store)
        if state.notes:
            notes.merge_from(state.notes, f"panini: merge notes from {remote}")
        index = ChunkIndex(store)
        try:
            index.refresh()
            _dropped_packs(repo, index, state)
            state.damaged += _rewound(repo, index, state)
        finally:
            index.close()
    except ObjectTooLarge as e:
        raise SyncError(f"the store of '{remote}' holds what no git-panini writes: {e}") from None
    finally:
        drop_private(repo, prefix)
    return state


def _dropped_packs(repo, index: ChunkIndex, state: RemoteState):
    """Packs the remote's store listed when this clone last merged it and lists no more (retired by a
    worker): readers choose other packs that yield their chunks (read_cost.choose_packs)."""
    seen = index.last_seen(state.remote, STORE_REF)
    if seen and state.store and seen != state.store and repo.exists(seen):
        store = Store(repo)
        _, removed = changed_leaves(repo, store.tree_of(seen), state.base_tree, "packs")
        if removed:
            index.mark_retired(removed)


def _rewound(repo, index: ChunkIndex, state: RemoteState) -> list[str]:
    """The remote's store and notes tips are descendants of the ones this clone last merged (their chains
    only grow): say which is not. The tips are remembered once they pass, or once a push of ours lands
    on them (_pushed), so a damage is told again until a push repairs it."""
    damaged = []
    for ref, tip in ((STORE_REF, state.store or state.replace), (NOTES_REF, state.notes)):
        seen = index.last_seen(state.remote, ref)
        if seen and seen != tip and (tip is None or repo.git("merge-base", "--is-ancestor", seen, tip,
                                                              check=False).returncode != 0):
            damaged.append(f"{ref} {'deleted' if tip is None else 'rewound'}")
        elif tip:
            index.saw(state.remote, ref, tip)
    return damaged


def damage(remote: str, ref: str, kind: str) -> str:
    return (f"{ref} on '{remote}' points at a {kind}, not a commit: the remote is damaged (see git panini fsck "
            f"--remote {remote}; git panini push --repair {remote} replaces it)")


def fetch_tips(repo, remote: str, prefix: str, branches: bool = False) -> dict[str, tuple[str, str]]:
    """One `git fetch` of the remote's store and notes tips into refs under `prefix` (the caller drops
    them); {ref as the remote names it: (object type, id)} of those it has. branches: its branches and
    tags too (under prefix heads/ and tags/)."""
    # Glob refspecs: a ref the remote lacks is simply not fetched (a plain refspec would fail).
    specs = [f"+refs/panini/stor*:{prefix}stor*", f"+refs/notes/panin*:{prefix}panin*"]
    if branches:
        specs += [f"+refs/heads/*:{prefix}heads/*", f"+refs/tags/*:{prefix}tags/*"]
    # Negotiate with our own store and notes tips only (what the remote's chains may share with us):
    # the branches have nothing in common with them and would cost round trips. With neither (a
    # fresh clone) there is nothing to negotiate at all. The remote's branches negotiate with all ours.
    ours = [ref for ref in (STORE_REF, NOTES_REF) if repo.ref(ref)] if not branches else []
    negotiation = [f"--negotiation-tip={ref}" for ref in ours]
    config = ["-c", "fetch.negotiationAlgorithm=noop"] if not ours and not branches else []
    for attempt in range(6):
        proc = repo.git(*config, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc",
                        "--no-recurse-submodules", *negotiation, remote, *specs, check=False)
        if proc.returncode == 0:
            break
        message = first_error_line(proc.stderr, proc.returncode)
        if "cannot lock ref" not in message or attempt == 5:
            drop_private(repo, prefix)
            raise SyncError(f"fetching from '{remote}' failed: {message}")
        time.sleep(0.05 * 2 ** attempt * (0.5 + random.random()))
    # The type as the remote has it, unpeeled: a blob, a tree or a tag there is no chain a push can build on.
    names = {prefix + "store": STORE_REF, prefix + "panini": NOTES_REF}
    out = repo.git("for-each-ref", "--format=%(objecttype) %(objectname) %(refname)", prefix).stdout.decode()
    found = {}
    for kind, oid, ref in (line.split(" ", 2) for line in out.splitlines()):
        if ref in names:
            found[names[ref]] = (kind, oid)
        elif branches and ref.startswith((prefix + "heads/", prefix + "tags/")):
            found["refs/" + ref[len(prefix):]] = (kind, oid)
    return found


def survey(repo, remote: str, prefix: str) -> RemoteSurvey:
    """The remote as it is now, for a check of all it holds: one `git ls-remote` of its store, notes,
    branches, tags and bulk refs. Only where this clone lacks an object those tips reach is there a
    second connection, a fetch of them into refs under `prefix` (the caller drops them), whose tips then
    count. The tips are returned with their object types, as the remote has them (unpeeled)."""
    listed = remote_refs(repo, remote, STORE_REF, NOTES_REF, "refs/heads/", "refs/tags/", RAW_REFS, PACK_REFS)
    bulk = {ref: oid for ref, oid in listed.items() if ref.startswith((RAW_REFS, PACK_REFS))}
    tips = {ref: oid for ref, oid in listed.items() if ref in (STORE_REF, NOTES_REF)
            or (ref.startswith(("refs/heads/", "refs/tags/")) and not ref.endswith("^{}"))}
    # What `git fetch` checks before it asks for a pack: every object the tips reach is here.
    here = not tips or repo.git("rev-list", "--objects", "--quiet", "--stdin", "--not", "--all",
                                input="".join(f"{oid}\n" for oid in set(tips.values())).encode(),
                                check=False).returncode == 0
    if not here:
        typed = fetch_tips(repo, remote, prefix, branches=True)
    else:
        oids = sorted(set(tips.values()))
        out = repo.git("cat-file", "--batch-check=%(objectname) %(objecttype)",
                       input="".join(f"{oid}\n" for oid in oids).encode()).stdout.decode()
        kinds = dict(line.split(" ", 1) for line in out.splitlines())
        typed = {ref: (kinds[oid], oid) for ref, oid in tips.items()}
    return RemoteSurvey({ref: t for ref, t in typed.items() if ref in (STORE_REF, NOTES_REF)},
                        {ref: oid for ref, (_, oid) in typed.items() if ref not in (STORE_REF, NOTES_REF)}, bulk)


def inspect_remote(repo, remote: str, tips: dict[str, tuple[str, str]] | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the remote's store and notes refs as it holds them now, fetched into refs
    private to this process and merged nowhere (or as a survey() found them: tips): a ref that is not a
    commit (no push can build on it) is an error; an entry of its store that no git-panini writes (every
    reader skips it) a warning."""
    prefix = private_prefix()
    try:
        tips = fetch_tips(repo, remote, prefix) if tips is None else tips
        errors = [f"{ref} on '{remote}' points at a {kind}, not a commit: no push can build on it "
                  f"(git panini push --repair {remote} replaces it)"
                  for ref, (kind, _) in sorted(tips.items()) if kind != "commit"]
        kind, oid = tips.get(STORE_REF, (None, None))
        tree = Store(repo).tree_of(oid) if kind == "commit" else None
        index = ChunkIndex(Store(repo))
        try:
            malformed = index.malformed_entries(tree)
        finally:
            index.close()
        warnings = [f"{STORE_REF} on '{remote}' holds a malformed entry, ignored: {path}" for path in malformed]
        if STORE_REF not in tips:
            warnings.append(f"'{remote}' has no {STORE_REF} (nothing pushed there yet)")
        return errors, warnings
    finally:
        drop_private(repo, prefix)


def drop_private(repo, prefix: str):
    refs = repo.git("for-each-ref", "--format=%(refname)", prefix, check=False).stdout.decode().split()
    if refs:
        repo.git("update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs).encode(), check=False)


def remote_refs(repo, remote: str, *prefixes: str) -> dict[str, str]:
    try:
        out = repo.git("ls-remote", remote, *(prefix + "*" for prefix in prefixes)).stdout.decode()
    except GitError as e:
        raise SyncError(f"cannot reach remote '{remote}': {e}") from None
    # ls-remote matches a pattern against the end of a name: refs/heads/refs/panini/packs/x is no pack ref.
    return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines() if "\t" in line)
            if ref.startswith(prefixes)}


def learn_holdings(repo, state: RemoteState, refs: dict[str, str] | None = None):
    """Prove what the remote's bulk refs hold (store/bulk.py), as they are now: one ls-remote (or refs, as
    a survey() just listed them), then the lists its store records, each checked by recomputing the ref's
    commit. Only what is proven here may spare an upload, mark a file done or let a raw batch go
    (DESIGN.md §4: objects prove, metadata claims)."""
    if refs is None:
        refs = remote_refs(repo, state.remote, RAW_REFS, PACK_REFS)
    _prove(repo, state.remote, refs, state.base_tree)
    index = ChunkIndex(Store(repo))
    try:
        lost = index.lost_refs(state.remote)
    finally:
        index.close()
    if lost:
        state.damaged.append(f"{len(lost)} pack data ref(s) deleted")


def _prove(repo, remote: str, refs: dict[str, str], store_tree: str | None) -> list[str]:
    # A list is a hint wherever it comes from (the recomputed commit is the proof): the remote's store's,
    # else ours (a damaged remote may have lost its lists while its bulk refs still hold the data).
    store = Store(repo)
    sources = [TreeEditor(repo, tree) for tree in (store_tree, store.tree_of(store.tip())) if tree]
    lists = {}
    for ref, commit in refs.items():
        path = raw_list_path(commit) if ref.startswith(RAW_REFS) else bulk_list_path(commit)
        entry = next((e for e in (s.get(path) for s in sources) if e is not None and not e.is_tree), None)
        lists[commit] = entry.oid if entry is not None else None
    index = ChunkIndex(Store(repo))
    listed = TreeEditor(repo, store_tree) if store_tree else None

    def readable(pack: str) -> bool:
        return listed.get(pack_path(pack)) is not None and all(index.holders(remote, b) for b in index.pack_blobs(pack))

    def retired(ref: str, commit: str, blobs: list[str]) -> bool:
        """A worker retires pack data with its packs (work/retire.py): the remote's store no longer lists
        the ref, every pack it lists that needs a blob the ref held has it in a ref there now, and every
        chunk a pack gone with it yielded another pack there yields (a push that only looks like a
        retirement, the only copy deleted with its recipe, is a loss). Anything else is a loss."""
        if listed is None or listed.get(bulk_list_path(commit)) is not None:
            return False
        for pack in index.packs_using(blobs):
            if listed.get(pack_path(pack)) is not None:
                if not readable(pack):
                    return False
            elif not all(any(q != pack and readable(q) for q, _, _, _ in index.locate(chunk))
                         for chunk, _ in index.pack_chunks(pack)):
                return False
        return True
    try:
        return index.prove_remote(remote, refs, lists, retired)
    finally:
        index.close()


def push(repo, remote: str, revs: list[str] | None = None, packs: list[str] = (), bulk: dict[str, str] | None = None,
         decide=None, attempts: int = 8) -> dict[str, str]:
    """Publish what `revs` reference (default: HEAD's commits the remote's branches lack) and push it;
    on a lost race fetch, merge and try again. packs / bulk: a worker's new pack recipes and the
    refs holding their data; decide(state): what the push removes, decided on each attempt on exactly
    the state it fetched and proved: ({ref: expected oid} of the raw batches the packs replace and the pack
    data refs a worker retires, [store paths of the recipes and lists that go with them], {ref: commit} of
    the pack data refs that hold what stays of those, {store path: list blob} of their lists).
    Returns {ref: oid} pushed."""
    if revs is None:
        revs = ["HEAD", "--not", f"--remotes={remote}"] if repo.ref("HEAD") else []
    for attempt in range(attempts):
        state = fetch(repo, remote)
        learn_holdings(repo, state)
        if state.damaged and not packs:   # a worker's push repairs nothing: its packs go, then it stops
            warn(f"the remote '{remote}' lost data since this clone last saw it ({', '.join(state.damaged)}): "
                 "pushing back what this clone holds (git panini fsck --remote checks it)")
            return repair(repo, remote, attempts)[0]
        delete, drop, create, lists = decide(state) if decide else ({}, [], {}, {})
        try:
            out = prepare(repo, state, revs, packs, bulk, drop, lists)
        except ObjectTooLarge as e:   # a fan directory of the remote's store that no store writes, where ours go
            raise SyncError(f"the store of '{remote}' holds what no git-panini writes: {e}") from None
        pushed = push_once(repo, state, out, (bulk or {}) | create, delete)
        if pushed is not None:
            return pushed
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")


def repair(repo, remote: str, attempts: int = 8) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """`git panini push --repair`: push back whatever the remote lost that this clone holds (publish.
    prepare_repair), for every file of this clone's branches, tags and remote-tracking refs. Returns
    ({ref: oid} pushed, {path: why} of files this clone cannot supply, the refs replaced). A store or notes
    ref that is not a commit there (DamagedRemote) is replaced, under a lease on exactly what is there."""
    for attempt in range(attempts):
        state = fetch(repo, remote, repair=True)
        learn_holdings(repo, state)
        out, skipped = prepare_repair(repo, state, ["--branches", "--tags", "--remotes"])
        pushed = push_once(repo, state, out)
        if pushed is not None:
            index = ChunkIndex(Store(repo))
            try:
                index.repaired(remote)
            finally:
                index.close()
            return pushed, skipped, sorted(state.broken)
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise SyncError(f"pushing to '{remote}' kept racing with other writers; try again")


def push_once(repo, state: RemoteState, out: Outgoing, bulk: dict[str, str] | None = None,
              delete: dict[str, str] | None = None) -> dict[str, str] | None:
    """One atomic push of the remote's next store and notes commits (children of its tips as fetched,
    so the push is a compare-and-swap on them), a new raw batch, and `bulk` refs. None when the remote
    moved since the fetch (a non-fast-forward or a stale lease)."""
    refs = dict(bulk or {}) | state.bulk
    if out.raw_batch:
        refs[RAW_REFS + out.raw_batch] = out.raw_batch
    updates = {STORE_REF: out.store, NOTES_REF: out.notes}
    updates = {ref: oid for ref, oid in updates.items() if oid} | refs
    # A repair replaces a damaged ref (or deletes it: notes with nothing to say), under a lease on exactly
    # the object the fetch saw there.
    delete = dict(delete or {}) | {ref: oid for ref, oid in state.broken.items() if ref not in updates}
    if not updates and not delete:
        return {}
    leases = [f"--force-with-lease={ref}:{oid}" for ref, oid in (delete | state.broken).items()]
    if state.replace:
        leases.append(f"--force-with-lease={STORE_REF}:{state.replace}")
    specs = [f"{oid}:{ref}" for ref, oid in updates.items()] + [f":{ref}" for ref in delete]
    show = out.raw_bytes > 0 and sys.stderr.isatty()
    if show:
        sys.stderr.write(f"git-panini: uploading {out.raw_chunks} new chunk(s), {human(out.raw_bytes)}, "
                         f"to {state.remote}\n")
        sys.stderr.flush()
    proc = _git_push(repo, ["--no-verify", "--porcelain", "--atomic", *leases, state.remote, *specs], show)
    if proc.returncode != 0:
        out_text = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if "hook declined" in out_text:   # the server's rules, not a race: retrying cannot help
            said = [line[len("remote:"):].strip() for line in proc.stderr.decode(errors="replace").splitlines()
                    if line.startswith("remote:") and line[len("remote:"):].strip()]
            raise SyncError(f"'{state.remote}' refused the push" + (f": {said[0]}" if said else " (its hook)"))
        shadowed = re.search(r"dst refspec (\S+) matches more than one", out_text)
        if shadowed:   # git's own rule (it matches a destination as a short name): no retry gets past it
            ref = shadowed[1]
            raise SyncError(f"'{state.remote}' has another ref git takes for {ref} (such as refs/tags/{ref}, which "
                            f"anyone with push access can create): no push of {ref} works until it is deleted there")
        if any(s in out_text for s in ("stale info", "rejected", "non-fast-forward", "fetch first", "cannot lock ref",
                                       "failed to update", "atomic")):
            return None
        raise SyncError(f"pushing to '{state.remote}' failed: {first_error_line(proc.stderr, proc.returncode)}")
    _pushed(repo, state, out, updates, delete)
    return updates


def _git_push(repo, args: list[str], show: bool) -> subprocess.CompletedProcess:
    """git push; show: with git's own progress ("Writing objects: 45% (12/27), 68.00 MiB | 40.00 MiB/s") passed
    on to our stderr as it comes (and kept, for the error checks), as git-lfs shows its uploads."""
    if not show:
        return repo.git("push", "--quiet", *args, check=False)
    proc = subprocess.Popen(["git", "--git-dir", repo.git_dir, "push", "--progress", *args],
                            cwd=repo.work_tree or repo.git_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kept = bytearray()

    def forward():
        for block in iter(lambda: proc.stderr.read1(4096), b""):
            kept.extend(block)
            sys.stderr.buffer.write(block)
            sys.stderr.flush()

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    out = proc.stdout.read()
    proc.wait()
    thread.join()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, bytes(kept))


def _pushed(repo, state: RemoteState, out: Outgoing, pushed: dict[str, str], delete: dict[str, str] | None):
    """The remote now holds what we pushed: ours merges it (so the next fetch negotiates from it), and
    the index learns what its bulk refs now hold (the refs we created, proven like any other)."""
    store = Store(repo)
    if out.store:
        store.merge_from(out.store, f"panini: pushed to {state.remote}")
    if out.notes:
        Notes(repo).merge_from(out.notes, f"panini: pushed to {state.remote}")
    index = ChunkIndex(store)
    try:
        index.refresh()
        refs = index.remote_bulk_refs(state.remote)
        for ref, tip in ((STORE_REF, out.store), (NOTES_REF, out.notes)):
            if tip:
                index.saw(state.remote, ref, tip)
    finally:
        index.close()
    for ref in delete or {}:
        refs.pop(ref, None)
    refs.update((ref, oid) for ref, oid in pushed.items() if ref.startswith((RAW_REFS, PACK_REFS)))
    _prove(repo, state.remote, refs, store.tree_of(out.store) if out.store else state.base_tree)
