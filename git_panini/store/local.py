"""The local store: refs/panini/local, what this clone cleaned and keeps, never pushed.

Tree (a parentless snapshot, so whatever it drops is garbage for `git gc` at once):

    manifests/<2 hex>/<oid>     every manifest the clean filter produced here
    chunks/<2 hex>/<oid>        every chunk those manifests need that is here as a raw blob

The clean filter records here, so staged data survives `git gc` before it is committed, and it
never leaves the machine on its own: a push publishes (shared.py, transfer/publish.py) only the manifests
that the pushed commits reference. `git panini prune` drops what nothing references any more.
"""

from __future__ import annotations

from ..git.cas_refs import SnapshotRef
from ..git.tree_edit import TreeEditor
from .shared import fan, leaves

LOCAL_REF = "refs/panini/local"


class LocalStore(SnapshotRef):
    ref = LOCAL_REF

    def record(self, manifests: list[str], chunks: list[str], message: str) -> str | None:
        def apply(editor: TreeEditor):
            for oid in manifests:
                editor.set("manifests/" + fan(oid), oid)
            for oid in chunks:
                editor.set("chunks/" + fan(oid), oid)
        return self.edit(apply, message)

    def drop(self, manifests: list[str], chunks: list[str], message: str) -> str | None:
        def apply(editor: TreeEditor):
            for oid in manifests:
                editor.remove("manifests/" + fan(oid))
            for oid in chunks:
                editor.remove("chunks/" + fan(oid))
        return self.edit(apply, message)

    def manifests(self) -> list[str]:
        return [e.name for e in leaves(self.repo, self.tree_of(self.tip()), "manifests", name_is_oid=True)]

    def chunks(self) -> list[str]:
        return [e.name for e in leaves(self.repo, self.tree_of(self.tip()), "chunks", name_is_oid=True)]
