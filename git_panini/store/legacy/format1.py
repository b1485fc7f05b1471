"""Stores written by git-panini 0.1 (format git-panini-store/1, one snapshot of everything) become format 2.

A format-1 store tree held `manifests/`, raw `chunks/`, `packs/<fan>/<id>/{data,recipe}` and
`dicts/` in one parentless commit. Converting keeps every byte reachable: manifests and recipes
go to the store chain, raw chunks to a raw batch (and refs/panini/local), pack data and
dictionaries to a pack bulk ref. Ours is converted the first time a command syncs; a remote's
format-1 tip is converted when fetched, and the next push replaces it (a lease on that exact tip).
"""

from __future__ import annotations

from ...format.chunking import ChunkParams
from ...git.objects import MODE_TREE, commit_tree_and_parents, encode_commit
from ...git.tree_edit import TreeEditor
from .. import bulk
from ..local import LocalStore
from ..shared import (
    MAX_CONFIG_SIZE,
    PACK_REFS,
    RAW_REFS,
    Store,
    bulk_list_path,
    config_blob,
    leaves,
    manifest_path,
    pack_path,
    raw_list_path,
)

V1_FORMAT = "format git-panini-store/1"


def is_v1(repo, commit: str | None) -> bool:
    """A format-1 snapshot: its config says so, and so does its shape: one parentless commit, no format-2
    entries (raw/ and bulk/ lists, recipes as blobs under packs/<fan>/). A format-2 store whose config merely
    claims format 1 (anyone may push one) is never converted: converting drops every format-2 entry."""
    if not commit:
        return False
    data = repo.read_kind(commit, "commit")
    if data is None or commit_tree_and_parents(data)[1]:
        return False
    tree = commit_tree_and_parents(data)[0]
    source = TreeEditor(repo, tree)
    entry = source.get("config")
    config = repo.read_kind(entry.oid, "blob", MAX_CONFIG_SIZE) if entry else None
    if not config or config.split(b"\n", 1)[0].decode(errors="replace") != V1_FORMAT:
        return False
    if source.get("raw") is not None or source.get("bulk") is not None:
        return False
    return not any(not e.is_tree for fan_dir in source.list("packs") if fan_dir.is_tree
                   for e in source.list(f"packs/{fan_dir.name}"))


def convert(repo, commit: str) -> tuple[str, dict[str, str]]:
    """Turn a format-1 snapshot into a format-2 store tree; its bulk blobs get refs of their own here
    (a raw batch listed in the tree, a pack bulk ref). Returns the tree and {bulk ref: commit}."""
    store = Store(repo)
    tree = store.tree_of(commit)
    source = TreeEditor(repo, tree)
    params = ChunkParams()
    config = source.get("config")
    for line in (repo.read_kind(config.oid, "blob", MAX_CONFIG_SIZE) or b"").decode(errors="replace").splitlines():
        if line.startswith("chunker "):
            params = ChunkParams.parse(line)
    out = TreeEditor(repo, None)
    out.set("config", repo.write_object("blob", config_blob(params)))
    manifests = [e.name for e in leaves(repo, tree, "manifests", name_is_oid=True)]
    for oid in manifests:
        out.set(manifest_path(oid), oid)
    pack_blobs = [e.oid for e in leaves(repo, tree, "dicts")]
    for pack in leaves(repo, tree, "packs", mode=MODE_TREE):
        parts = {e.name: e.oid for e in repo.read_tree(pack.oid)} if pack.is_tree else {}
        if parts.get("recipe") == pack.name and "data" in parts:
            out.set(pack_path(pack.name), pack.name)
            pack_blobs.append(parts["data"])
    raw = [e.name for e in leaves(repo, tree, "chunks", name_is_oid=True)]
    refs = {}
    if raw:
        batch, listing = _bulk(repo, RAW_REFS, raw, bulk.FORMAT1_RAW_MESSAGE, refs)
        out.set(raw_list_path(batch), listing)
    if pack_blobs:
        commit, listing = _bulk(repo, PACK_REFS, pack_blobs, bulk.FORMAT1_PACK_MESSAGE, refs)
        out.set(bulk_list_path(commit), listing)
    LocalStore(repo).record(manifests, raw, "panini: keep the data of a format-1 store")
    return out.write(), refs


def _bulk(repo, prefix: str, blobs: list[str], message: str, refs: dict[str, str]) -> tuple[str, str]:
    commit, listing = bulk.write_bulk(repo, blobs, message)
    repo.update_ref(prefix + commit, commit, None, message)
    refs[prefix + commit] = commit
    return commit, listing


def upgrade_local(repo) -> bool:
    """Convert our own store if it is format 1 (a new root commit of the chain). True if it was."""
    store = Store(repo)
    tip = store.tip()
    if not is_v1(repo, tip):
        return False
    tree, _ = convert(repo, tip)
    new = repo.write_object("commit", encode_commit(tree, [], "panini: store converted to format 2"))
    return repo.update_ref(store.ref, new, tip, "panini: store format 2")
