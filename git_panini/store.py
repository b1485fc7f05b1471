"""The store: refs/panini/store, a commit chain whose tree says where every chunk and manifest lives."""

from __future__ import annotations

from .chunking import ChunkParams
from .index import ChunkIndex
from .objects import TreeEntry
from .recipe import read_recipe_chunks
from .refchain import RefChain
from .treeedit import TreeEditor, union_trees

STORE_REF = "refs/panini/store"
FORMAT_LINE = "format git-panini-store/1\n"


def fan(oid: str) -> str:
    return f"{oid[:2]}/{oid}"


def manifest_path(oid: str) -> str:
    return "manifests/" + fan(oid)


def chunk_path(oid: str) -> str:
    return "chunks/" + fan(oid)


class StoreError(Exception):
    pass


class Store(RefChain):
    ref = STORE_REF

    def params(self) -> ChunkParams:
        """The chunking parameters recorded in the store (defaults for a store not yet written)."""
        tree = self.tree_of(self.tip())
        if tree is None:
            return ChunkParams()
        entry = TreeEditor(self.repo, tree).get("config")
        data = self.repo.read_kind(entry.oid, "blob") if entry else None
        if data is None:
            raise StoreError("the store has no readable config")
        for line in data.decode().splitlines():
            if line.startswith("chunker "):
                return ChunkParams.parse(line)
        raise StoreError("the store config names no chunker")

    def record(self, manifests: list[str], chunks: list[str], params: ChunkParams) -> str | None:
        """Add manifests and raw chunks (already written as objects) to the store in one commit."""
        index = ChunkIndex(self)
        index.refresh()

        def apply(editor: TreeEditor):
            if editor.get("config") is None:
                editor.set("config", self.repo.write_object("blob", (FORMAT_LINE + params.encode()).encode()))
            for oid in manifests:
                editor.set(manifest_path(oid), oid)
            for oid in chunks:
                if not index.is_packed(oid):
                    editor.set(chunk_path(oid), oid)

        n = len(manifests)
        try:
            return self.edit(apply, f"panini: add {n} file{'s' if n != 1 else ''}, {len(chunks)} new chunks")
        finally:
            index.close()

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        tree = union_trees(self.repo, ours, theirs)
        editor = TreeEditor(self.repo, tree)
        one_sided = _one_sided_packs(self.repo, ours, theirs)
        for pack in one_sided:
            for oid, _, _ in read_recipe_chunks(self.repo, pack.oid):
                editor.remove(chunk_path(oid))
        return editor.write()

    # --- reads -----------------------------------------------------------------------------------
    def manifests(self) -> list[str]:
        return [e.name for e in _leaves(self.repo, self.tree_of(self.tip()), "manifests")]

    def raw_chunks(self) -> list[str]:
        return [e.name for e in _leaves(self.repo, self.tree_of(self.tip()), "chunks")]

    def has_manifest(self, oid: str) -> bool:
        tree = self.tree_of(self.tip())
        return tree is not None and TreeEditor(self.repo, tree).get(manifest_path(oid)) is not None


def _leaves(repo, tree: str | None, top: str) -> list[TreeEntry]:
    """Entries of a two-level fanout directory ('top/<2 hex>/<name>')."""
    if tree is None:
        return []
    editor = TreeEditor(repo, tree)
    out = []
    for fan_dir in editor.list(top):
        out.extend(editor.list(f"{top}/{fan_dir.name}"))
    return out


def _one_sided_packs(repo, ours: str | None, theirs: str | None) -> list[TreeEntry]:
    a = {e.name: e for e in _leaves(repo, ours, "packs")}
    b = {e.name: e for e in _leaves(repo, theirs, "packs")}
    return [e for name, e in {**a, **b}.items() if (name in a) != (name in b)]
