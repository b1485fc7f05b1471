"""What a push must send: the manifests the pushed commits reference that the remote lacks, and their new chunks.

Nothing else leaves the machine: data that was cleaned but never committed (or committed only on
branches that are not being pushed) stays in refs/panini/local. The chunks go as one raw batch,
a parentless commit under refs/panini/raw/, listed in the store so workers know what it holds.
"""

from __future__ import annotations

from . import manifest as manifest_mod
from . import pointers
from .index import ChunkIndex, changed_leaves
from .local import LocalStore
from .notes import Notes, new_note
from .objects import encode_commit
from .repo import ObjectTooLarge
from .store import RAW_REFS, Store, fan, manifest_path
from .sync import SyncError
from .treeedit import TreeEditor


class PublishError(SyncError):
    """The pushed commits need data this repository cannot supply."""


def referenced_manifests(repo, revs: list[str]) -> dict[str, str]:
    """{manifest: a path} of the pointers among the objects revs reach (e.g. the commits being pushed)."""
    found = {}
    for f in pointers.in_revs(repo, revs):
        if f.pointer is None:
            raise PublishError(f"{f.path} holds a malformed pointer ({f.error})")
        found.setdefault(f.pointer.manifest, f.path)
    return found


def publish_local(repo) -> list[str]:
    """Without a remote: the files committed on branches and tags become work for the local worker."""
    store = Store(repo)
    return publish(repo, None, store.tip(), ["--branches", "--tags"])


def publish(repo, remote: str | None, remote_tip: str | None, revs: list[str]) -> list[str]:
    """Record in our store (and notes) what a push to `remote` must carry; returns the manifests added.

    Candidates: manifests that revs reference, plus any in our store the remote's store lacks (an
    earlier push that failed half-way). Each goes with every chunk the remote does not hold yet.
    remote None: publish into our own store only (no raw batch: nothing is sent).
    """
    store = Store(repo)
    remote_tree = store.tree_of(remote_tip) if remote_tip else None
    ours = store.tree_of(store.tip())
    paths = referenced_manifests(repo, revs) if revs else {}
    candidates = set(paths) | {e.name for e in changed_leaves(repo, remote_tree, ours, "manifests")[0]}
    theirs = TreeEditor(repo, remote_tree)
    new = sorted(m for m in candidates if remote_tree is None or theirs.get(manifest_path(m)) is None)
    if not new:
        return []
    index = ChunkIndex(store)
    try:
        index.refresh()
        send, notes = _chunks_to_send(repo, remote, index, new, paths)
    finally:
        index.close()
    batch = _raw_batch(repo, send) if send and remote else None
    params = store.params()
    if batch:
        repo.update_ref(RAW_REFS + batch[0], batch[0], None, "panini: raw batch")
    store.publish(new, batch, params, f"panini: publish {len(new)} file(s), {len(send)} new chunk(s)")
    Notes(repo).put(notes, f"panini: {len(notes)} pending", only_if_absent=True)
    # Whatever we publish stays reachable here too, from the local store.
    LocalStore(repo).record(new, send, "panini: keep what was published")
    return new


def _chunks_to_send(repo, remote: str | None, index: ChunkIndex, manifests: list[str], paths: dict[str, str]):
    send: list[str] = []
    seen: set[str] = set()
    notes: dict[str, dict] = {}
    for manifest in manifests:
        what = paths.get(manifest) or f"the file of manifest {manifest}"
        try:
            data = repo.read_kind(manifest, "blob", manifest_mod.MAX_MANIFEST_SIZE)
            chunks = manifest_mod.parse(data, repo.hex_len) if data is not None else None
        except (manifest_mod.ManifestError, ObjectTooLarge) as e:
            raise PublishError(f"{what}: manifest {manifest} is unreadable: {e}") from None
        if chunks is None:
            raise PublishError(f"{what}: its manifest {manifest} is not in this repository; re-add the file "
                               "(git add --renormalize)")
        new_chunks = new_bytes = 0
        for chunk, size in chunks:
            if chunk in seen or (remote and index.remote_has(remote, chunk)):
                continue
            seen.add(chunk)
            if repo.exists(chunk):
                send.append(chunk)
            elif not any(all(repo.exists(b) for b in index.pack_blobs(p)) for p, _, _, _ in index.locate(chunk)):
                raise PublishError(f"{what}: chunk {chunk} is neither here nor on '{remote}'; "
                                   "re-add the file (git add --renormalize)")
            new_chunks += 1
            new_bytes += size
        notes[manifest] = new_note(sum(s for _, s in chunks), len(chunks), new_chunks, new_bytes)
    return send, notes


def _raw_batch(repo, chunks: list[str]) -> tuple[str, str]:
    """A parentless commit whose tree holds these chunk blobs; returns (commit, list blob)."""
    editor = TreeEditor(repo, None)
    for chunk in chunks:
        editor.set(fan(chunk), chunk)
    tree = editor.write()
    commit = repo.write_object("commit", encode_commit(tree, [], f"panini: {len(chunks)} raw chunk(s)",
                                                       content_addressed=True))
    listing = repo.write_object("blob", "".join(f"{c}\n" for c in sorted(chunks)).encode())
    return commit, listing
