"""What a push carries: the remote's next store and notes commits, built from its tips as fetched.

Only what the pushed commits reference leaves the machine. The next store commit is the remote's
tip (its only parent) plus the manifests those commits reference that the remote lacks, the list
of one new raw batch holding every chunk of theirs the remote is not proven to hold (its bulk refs,
transfer.sync.learn_holdings: never its manifests or lists), and a worker's new packs. The next notes commit is the remote's tip plus our notes for files in that store.
Nothing else of our own store goes: not files published to another remote, not files a
remote-less worker took from local branches, not data that was cleaned and never committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..format import pointer_scan as pointers
from ..format.manifest import ManifestError
from ..git.objects import encode_commit
from ..git.tree_edit import TreeEditor
from ..store import bulk
from ..store import manifests as manifest_store
from ..store.chunk_index import ChunkIndex, changed_leaves
from ..store.chunk_source import ChunkSource, ReadError
from ..store.local import LocalStore
from ..store.notes import Notes, is_note, new_note
from ..store.shared import (STORE_REF, Store, bulk_list_path, config_blob, leaves, manifest_path, pack_path,
                            raw_list_path)
from .remote import RemoteState, SyncError, default_remote, remote_objects


class PublishError(SyncError):
    """The pushed commits need data this repository cannot supply."""


@dataclass
class Outgoing:
    store: str | None = None       # the remote's next store commit (None: its store stays as it is)
    notes: str | None = None       # the remote's next notes commit
    raw_batch: str | None = None   # a new raw batch commit, pushed as refs/panini/raw/<it>
    raw_chunks: int = 0            # what the batch holds (for the progress line)
    raw_bytes: int = 0


def referenced_manifests(repo, revs: list[str]) -> dict[str, str]:
    """{manifest: a path} of the pointers among the objects revs reach (e.g. the commits being pushed)."""
    found = {}
    for f in pointers.in_revs(repo, revs):
        if f.pointer is None:
            raise PublishError(f"{f.path} holds a malformed pointer ({f.error})")
        found.setdefault(f.pointer.manifest, f.path)
    return found


def prepare(repo, state: RemoteState, revs: list[str], packs=(), bulk: dict[str, str] | None = None,
            drop=(), lists: dict[str, str] | None = None) -> Outgoing:
    """The commits a push to state.remote must carry for revs (and a worker's new `packs`, whose data goes in
    the `bulk` refs {ref: commit} pushed with them: their lists go into the store beside the recipes; `drop`:
    the store paths of the packs and lists a worker retires in this push, `lists` {path: blob} those of the
    refs that keep what stays of them)."""
    store = Store(repo)
    base = TreeEditor(repo, state.base_tree)
    paths = referenced_manifests(repo, revs) if revs else {}
    new = sorted(m for m in paths if base.get(manifest_path(m)) is None)
    index = ChunkIndex(store)
    try:
        index.refresh()
        # Every file the pushed commits reference, not only those the remote's store does not list: a
        # listed manifest is a claim (anyone can push one), and its chunks go unless proven held there.
        send, pending = _chunks_to_send(repo, state.remote, index, sorted(paths), paths)
        lists = _bulk_lists(store, (bulk or {}).values()) | (lists or {})
        return _outgoing(repo, state, store, index, new, send, pending, packs, lists=lists, drop=drop)
    finally:
        index.close()


def prepare_repair(repo, state: RemoteState, revs: list[str]) -> tuple[Outgoing, dict[str, str]]:
    """What puts back on the remote what it lost and this clone holds (`git panini push --repair`): the
    store entries ours has and its store lacks, every chunk of the files revs reference that it is not
    proven to hold, and those files' notes back to pending so a worker packs them again. Returns the
    push and {path: why} of the files this clone cannot supply (the rest still goes)."""
    store = Store(repo)
    paths, skipped = {}, {}
    for f in pointers.in_revs(repo, revs):
        if f.pointer is None:
            skipped[f.path] = f"malformed pointer ({f.error})"
        else:
            paths.setdefault(f.pointer.manifest, f.path)
    index = ChunkIndex(store)
    try:
        index.refresh()
        send, pending, seen = [], {}, set()
        for manifest in sorted(paths):
            try:
                chunks, notes = _chunks_to_send(repo, state.remote, index, [manifest], paths, seen)
            except PublishError as e:
                skipped[paths[manifest]] = str(e)
                continue
            send += chunks
            pending |= {m: n for m, n in notes.items() if chunks}
        merged = _held_only(repo, state, index, store.merge_trees(state.base_tree, store.tree_of(store.tip())))
        base = TreeEditor(repo, merged)
        new = sorted(m for m in paths if m not in skipped and base.get(manifest_path(m)) is None)
        out = _outgoing(repo, state, store, index, new, send, pending, (), tree=merged, reset=set(pending))
        return out, skipped
    finally:
        index.close()


def _held_only(repo, state: RemoteState, index: ChunkIndex, tree: str) -> str:
    """The merged tree a repair pushes, less the packs and pack data lists ours adds whose data the remote
    holds in no proven pack ref (retired there, work/retire.py: a repair sends chunks, never pack data)."""
    editor, theirs = TreeEditor(repo, tree), TreeEditor(repo, state.base_tree)
    added, _ = changed_leaves(repo, state.base_tree, tree, "packs")
    for fan_name, entry in added:
        if theirs.get(f"packs/{fan_name}/{entry.name}") is None and not all(
                index.remote_holds_blob(state.remote, b, pack_refs_only=True) for b in index.pack_blobs(entry.name)):
            editor.remove(f"packs/{fan_name}/{entry.name}")
    held = set(index.remote_bulk_refs(state.remote).values())
    for entry in leaves(repo, tree, "bulk"):
        path = bulk_list_path(entry.name)
        if entry.name not in held and theirs.get(path) is None:
            editor.remove(path)
    return editor.write()


def _bulk_lists(store: Store, commits) -> dict[str, str]:
    """{store path: list blob} our store records for these pack data commits."""
    ours = TreeEditor(store.repo, store.tree_of(store.tip()))
    lists = {}
    for commit in commits:
        entry = ours.get(bulk_list_path(commit))
        if entry is not None:
            lists[bulk_list_path(commit)] = entry.oid
    return lists


def _outgoing(repo, state: RemoteState, store: Store, index: ChunkIndex, new, send, pending, packs,
              tree: str | None = None, reset=frozenset(), lists: dict[str, str] | None = None, drop=()) -> Outgoing:
    """tree: the store tree to build on (default: the remote's as fetched); reset: files whose note goes
    back to pending whatever the remote's says; lists: pack data lists to add; drop: paths to remove."""
    batch = _raw_batch(repo, send) if send else None
    editor = TreeEditor(repo, tree or state.base_tree)
    if editor.get("config") is None:
        editor.set("config", repo.write_object("blob", config_blob(store.params())))
    for m in new:
        editor.set(manifest_path(m), m)
    if batch:
        editor.set(raw_list_path(batch[0]), batch[1])
    for recipe in packs:
        editor.set(pack_path(recipe), recipe)
    for path, listing in (lists or {}).items():
        editor.set(path, listing)
    for path in drop:
        editor.remove(path)
    tree = editor.write()
    out = Outgoing(raw_batch=batch[0] if batch else None, raw_chunks=len(send) if batch else 0,
                   raw_bytes=sum(repo.reader.size(c) or 0 for c in send) if batch else 0)
    replacing = bool(state.replace) or STORE_REF in state.broken   # a lease on what it replaces, no parent
    if (new or packs or state.base_tree or replacing) and (tree != state.base_tree or replacing):
        message = f"panini: publish {len(new)} file(s), {len(send)} new chunk(s), {len(packs)} pack(s)"
        out.store = repo.write_object("commit", encode_commit(tree, [state.store] if state.store else [], message))
    out.notes = _notes_commit(repo, state, tree, pending, index, reset)
    if new:   # what we publish stays reachable here too, from the local store
        LocalStore(repo).record(new, send, "panini: keep what was published")
    return out


def publish_local(repo) -> list[str]:
    """Without a remote: the files committed on branches and tags become work for the local worker,
    in our own store and notes (which no push sends as such)."""
    store = Store(repo)
    paths = referenced_manifests(repo, ["--branches", "--tags"])
    tip = store.tip()   # read once: one git call per file was most of a small worker run's time
    new = sorted(m for m in paths if tip is None or not store.has_manifest(m, tip))
    if not new:
        return []
    index = ChunkIndex(store)
    try:
        index.refresh()
        _, pending = _chunks_to_send(repo, None, index, new, paths)
    finally:
        index.close()
    store.publish(new, store.params(), f"panini: {len(new)} committed file(s) to work on")
    Notes(repo).put(pending, f"panini: {len(pending)} pending", only_if_absent=True)
    return new


def _chunks_to_send(repo, remote: str | None, index: ChunkIndex, manifests: list[str], paths: dict[str, str],
                    seen: set[str] | None = None):
    """(chunks the remote is not proven to hold, {manifest: its pending note}). A chunk that is here only
    inside a pack is decoded (and re-hashed) back into a raw blob: a pack may hold other files' bytes, which
    must not go along. One neither here nor there is fetched from the other remote if there is one."""
    send: list[str] = []
    seen = set() if seen is None else seen   # chunks already on their way (shared by files)
    notes: dict[str, dict] = {}
    todo: list[tuple[str, str, int]] = []     # (manifest, chunk, size) not raw here
    for manifest in manifests:
        what = paths.get(manifest) or f"the file of manifest {manifest}"
        try:
            chunks = manifest_store.load(repo, manifest)
        except ManifestError as e:
            raise PublishError(f"{what}: manifest {manifest} is unreadable: {e}") from None
        if chunks is None:
            raise PublishError(f"{what}: its manifest {manifest} is not in this repository; re-add the file "
                               "(git add --renormalize)")
        new_chunks = new_bytes = 0
        for chunk, size in chunks.distinct():
            if chunk in seen or (remote and index.remote_has(remote, chunk)):
                continue
            seen.add(chunk)
            if repo.exists(chunk):
                send.append(chunk)
            else:
                todo.append((manifest, chunk, size))
            new_chunks += 1
            new_bytes += size
        notes[manifest] = new_note(chunks.size, len(chunks), new_chunks, new_bytes)
    if todo:
        send += _materialize(repo, remote, todo, paths)
    return send, notes


def _materialize(repo, remote: str | None, todo: list[tuple[str, str, int]], paths: dict[str, str]) -> list[str]:
    """Raw blobs for chunks that are here only packed, or only on another remote (a lazy clone pushing
    to a fork), written here after their hash is checked."""
    other = default_remote(repo)
    source = ChunkSource(repo, fetcher=remote_objects(repo, other if other and other != remote else None))
    written = []
    try:
        source.fetch(source.needed({c: s for _, c, s in todo}))
        for manifest, chunk, size in todo:
            try:
                data = source.read(chunk, size)
            except ReadError as e:
                what = paths.get(manifest) or f"the file of manifest {manifest}"
                raise PublishError(f"{what}: chunk {chunk} is neither here nor on '{remote}' ({e}); "
                                   "fetch it first (git panini pull) or re-add the file") from None
            if not repo.exists(chunk):
                repo.write_object("blob", data)
            written.append(chunk)
    finally:
        source.close()
    return written


def _raw_batch(repo, chunks: list[str]) -> tuple[str, str]:
    """A parentless commit whose tree holds these chunk blobs; returns (commit, list blob)."""
    chunks = sorted(set(chunks))
    return bulk.write_bulk(repo, chunks, bulk.raw_message(chunks))


def _notes_commit(repo, state: RemoteState, store_tree: str, pending: dict[str, dict], index: ChunkIndex,
                  reset=frozenset()) -> str | None:
    """The remote's notes tip plus our notes that differ from its, for files in store_tree, plus
    pending notes for newly published files. None when that changes nothing. Notes are one namespace
    for every remote: "completed" goes only where packs yielding the whole file are in store_tree."""
    notes = Notes(repo)
    base = notes.tree_of(state.notes) if state.notes else None
    ours = notes.tree_of(notes.tip())
    published = TreeEditor(repo, store_tree)
    editor = TreeEditor(repo, base)
    for entry, manifest in _changed_notes(repo, base, ours):
        if published.get(manifest_path(manifest)) is None:
            continue
        note = notes.load(entry.oid)
        if note and note.get("status") == "completed" and not _packed_in(repo, index, published, manifest):
            continue
        editor.set(notes.path(manifest), entry.oid)
    fresh = {m: n for m, n in pending.items() if m in reset or editor.get(notes.path(m)) is None}
    for manifest, blob in zip(fresh, repo.write_blobs([notes.encode(n) for n in fresh.values()])):
        editor.set(notes.path(manifest), blob)
    tree = editor.write()
    if tree == base or (base is None and not editor.list("")):
        return None
    return repo.write_object("commit", encode_commit(tree, [state.notes] if state.notes else [],
                                                     f"panini: {len(fresh)} pending, status updates"))


def _packed_in(repo, index: ChunkIndex, store: TreeEditor, manifest: str) -> bool:
    """Every chunk of the file is yielded by a pack that `store` lists."""
    try:
        chunks = manifest_store.load(repo, manifest)
    except ManifestError:
        return False
    return bool(chunks) and all(any(store.get(pack_path(p)) is not None for p, _, _, _ in index.locate(c))
                                for c in chunks.chunks)


def _changed_notes(repo, base: str | None, ours: str | None):
    """(entry, manifest) of our notes whose blob differs from the base tree's (only changed fan directories)."""
    def valid(fan_name, entry):
        return is_note(entry, len(fan_name), repo.hex_len)
    for fan_name, entry in changed_leaves(repo, base, ours, "", valid)[0]:
        yield entry, fan_name + entry.name
