"""Consistency of the store and notes: every manifest resolvable, every listed object present."""

from __future__ import annotations

from . import manifest as manifest_mod
from .notes import Notes
from .reader import ChunkSource
from .recipe import RecipeError, parse_recipe
from .store import Store, _leaves


def check_store(repo) -> dict:
    store, errors, warnings = Store(repo), [], []
    tip = store.tip()
    tree = store.tree_of(tip)
    counts = {"manifests": 0, "raw_chunks": 0, "packs": 0, "notes": 0}
    if tip is None:
        warnings.append("there is no refs/panini/store yet (nothing added, or not fetched)")
    elif tree is None:
        errors.append(f"refs/panini/store points at {tip}, which is not a readable commit")
    source = ChunkSource(repo)
    raw = {e.name for e in _leaves(repo, tree, "chunks")}
    counts["raw_chunks"] = len(raw)
    for name in raw:
        if not repo.exists(name):
            errors.append(f"raw chunk {name} is listed in the store but its blob is missing")
    for pack in _leaves(repo, tree, "packs"):
        counts["packs"] += 1
        entries = {e.name: e for e in repo.read_tree(pack.oid)}
        if not all(k in entries and repo.exists(entries[k].oid) for k in ("data", "recipe")):
            errors.append(f"pack {pack.name} lacks its data or recipe blob")
            continue
        try:
            for chunk, _, _ in parse_recipe(repo.read_kind(entries["recipe"].oid, "blob"), repo.hex_len)["chunks"]:
                if chunk in raw:
                    warnings.append(f"chunk {chunk} is both raw and packed (the raw copy can go)")
        except RecipeError as e:
            errors.append(f"pack {pack.name}: {e}")
    manifests = [e.name for e in _leaves(repo, tree, "manifests")]
    counts["manifests"] = len(manifests)
    for oid in manifests:
        data = repo.read_kind(oid, "blob")
        if data is None:
            errors.append(f"manifest {oid} is listed in the store but missing")
            continue
        try:
            chunks = manifest_mod.parse(data, repo.hex_len)
        except manifest_mod.ManifestError as e:
            errors.append(f"manifest {oid}: {e}")
            continue
        lost = [c for c, _ in chunks if not source.has(c)]
        if lost:
            errors.append(f"manifest {oid}: {len(lost)} chunk(s) have no raw blob and no pack (first {lost[0]})")
    source.close()
    notes = Notes(repo).all()
    counts["notes"] = len(notes)
    listed = set(manifests)
    for manifest, note in notes.items():
        if manifest not in listed:
            warnings.append(f"note for {manifest}, which the store does not list")
        if note.get("status") not in ("pending", "queued", "processing", "completed", "failed"):
            errors.append(f"note for {manifest} has no valid status")
    return {"ok": not errors, "store": tip, "errors": errors, "warnings": warnings, "counts": counts}
