"""Bulk refs and what proves their content: refs/panini/raw/<c> (one push's raw chunks) and
refs/panini/packs/<c> (one worker push's pack data and dictionaries).

Each such ref points at a content-addressed commit: a fixed signature and message over a tree that
holds exactly its blobs, fanned out as `<2 hex>/<id>`. So a list of blob ids proves what a remote's ref
holds when the commit recomputed from the list is the very commit the ref points at: the server's
connectivity check guarantees those blobs exist, and nobody can name a blob id without its content.
The store's lists (`raw/<fan>/<c>`, `bulk/<fan>/<c>`) are hints; this recomputation is the proof.
"""

from __future__ import annotations

from ..git.objects import MODE_BLOB, MODE_TREE, TreeEntry, encode_commit, encode_tree, object_id

RAW_MESSAGE = "panini: {n} raw chunk(s)"
PACK_MESSAGE = "panini: pack data"
FORMAT1_RAW_MESSAGE = "panini: raw chunks of a format-1 store"     # refs made converting a format-1 store
FORMAT1_PACK_MESSAGE = "panini: pack data of a format-1 store"


def raw_message(chunks) -> str:
    return RAW_MESSAGE.format(n=len(chunks))


def messages(raw: bool, blobs) -> tuple[str, ...]:
    """The messages a bulk commit of this kind and content may carry."""
    return (raw_message(blobs), FORMAT1_RAW_MESSAGE) if raw else (PACK_MESSAGE, FORMAT1_PACK_MESSAGE)


def bulk_tree(blobs, algo: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(tree id, [(kind, data)] of the tree objects) of a bulk commit's tree holding these blobs."""
    fans: dict[str, list[TreeEntry]] = {}
    for oid in set(blobs):
        fans.setdefault(oid[:2], []).append(TreeEntry(oid, MODE_BLOB, oid))
    objects, top = [], []
    for name, entries in fans.items():
        data = encode_tree(entries)
        objects.append(("tree", data))
        top.append(TreeEntry(name, MODE_TREE, object_id("tree", data, algo)))
    data = encode_tree(top)
    objects.append(("tree", data))
    return object_id("tree", data, algo), objects


def bulk_commit(blobs, message: str, algo: str) -> str:
    """The id of the content-addressed commit whose tree holds exactly these blobs."""
    tree, _ = bulk_tree(blobs, algo)
    return object_id("commit", encode_commit(tree, [], message, content_addressed=True), algo)


def proves(commit: str, blobs, raw: bool, algo: str) -> bool:
    """The list `blobs` is exactly what the bulk commit `commit` (a raw batch's, or pack data's) holds."""
    if not blobs:
        return False
    tree, _ = bulk_tree(blobs, algo)
    return any(object_id("commit", encode_commit(tree, [], m, content_addressed=True), algo) == commit
               for m in messages(raw, blobs))


def write_bulk(repo, blobs, message: str) -> tuple[str, str]:
    """Write the content-addressed commit holding these blobs (which must be here) and the list blob the
    store records for it; returns (commit, list blob)."""
    blobs = sorted(set(blobs))
    tree, objects = bulk_tree(blobs, repo.algo)
    for kind, data in objects:
        repo.write_object(kind, data)
    commit = repo.write_object("commit", encode_commit(tree, [], message, content_addressed=True))
    listing = repo.write_object("blob", "".join(f"{b}\n" for b in blobs).encode())
    return commit, listing
