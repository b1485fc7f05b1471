"""Stores written by git-panini 0.1 (format git-panini-store/1, one snapshot of everything) become format 2.

A format-1 store tree held `manifests/`, raw `chunks/`, `packs/<fan>/<id>/{data,recipe}` and
`dicts/` in one parentless commit. Converting keeps every byte reachable: manifests and recipes
go to the store chain, raw chunks to a raw batch (and refs/panini/local), pack data and
dictionaries to a pack bulk ref. Ours is converted the first time a command syncs; a remote's
format-1 tip is converted when fetched, and the next push replaces it (a lease on that exact tip).
"""

from __future__ import annotations

from ...format.chunking import ChunkParams
from ...git.objects import MODE_TREE, encode_commit
from ...git.tree_edit import TreeEditor
from ..local import LocalStore
from ..shared import (
    MAX_CONFIG_SIZE,
    PACK_REFS,
    RAW_REFS,
    Store,
    config_blob,
    fan,
    leaves,
    manifest_path,
    pack_path,
    raw_list_path,
)

V1_FORMAT = "format git-panini-store/1"


def is_v1(repo, commit: str | None) -> bool:
    tree = Store(repo).tree_of(commit) if commit else None
    entry = TreeEditor(repo, tree).get("config") if tree else None
    data = repo.read_kind(entry.oid, "blob", MAX_CONFIG_SIZE) if entry else None
    return bool(data) and data.split(b"\n", 1)[0].decode(errors="replace") == V1_FORMAT


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
        batch = _bulk(repo, RAW_REFS, raw, "panini: raw chunks of a format-1 store", refs)
        out.set(raw_list_path(batch), repo.write_object("blob", "".join(f"{c}\n" for c in sorted(raw)).encode()))
    if pack_blobs:
        _bulk(repo, PACK_REFS, pack_blobs, "panini: pack data of a format-1 store", refs)
    LocalStore(repo).record(manifests, raw, "panini: keep the data of a format-1 store")
    return out.write(), refs


def _bulk(repo, prefix: str, blobs: list[str], message: str, refs: dict[str, str]) -> str:
    editor = TreeEditor(repo, None)
    for oid in blobs:
        editor.set(fan(oid), oid)
    commit = repo.write_object("commit", encode_commit(editor.write(), [], message, content_addressed=True))
    repo.update_ref(prefix + commit, commit, None, message)
    refs[prefix + commit] = commit
    return commit


def upgrade_local(repo) -> bool:
    """Convert our own store if it is format 1 (a new root commit of the chain). True if it was."""
    store = Store(repo)
    tip = store.tip()
    if not is_v1(repo, tip):
        return False
    tree, _ = convert(repo, tip)
    new = repo.write_object("commit", encode_commit(tree, [], "panini: store converted to format 2"))
    return repo.update_ref(store.ref, new, tip, "panini: store format 2")
