"""Refs that many writers update, by compare-and-swap: HistoryRef (shared chains) and SnapshotRef (local).

A shared ref (the store's metadata, the notes) is a chain: every update is a commit whose parent
is the tip it replaced, and a merge with a remote's tip has both tips as parents. Git excludes
objects from a push or fetch only along commit ancestry, so this history is what keeps every
transfer incremental; and a push of our tip is accepted only if it descends from the remote's tip
we merged, which makes the push itself a compare-and-swap on exactly that tip.

A local-only ref (refs/panini/local) is a snapshot: each update is a parentless commit, so an
entry it drops is unreachable at once and `git gc` frees its bytes.
"""

from __future__ import annotations

from .objects import commit_tree_and_parents, encode_commit
from .tree_edit import TreeEditor


class RefError(Exception):
    """A ref of ours points at something that is not a commit: never overwritten blindly."""


class CasRef:
    """A ref of ours updated only by compare-and-swap: edit() reads its tree, applies a change, commits."""

    ref: str = ""

    def __init__(self, repo):
        self.repo = repo

    def tip(self) -> str | None:
        return self.repo.ref(self.ref, peel=False)

    def _tree_of_tip(self, tip: str | None) -> str | None:
        tree = self.tree_of(tip)
        if tip is not None and tree is None:
            raise RefError(f"{self.ref} points at {tip}, which is not a readable commit; see git panini fsck")
        return tree

    def tree_of(self, commit: str | None) -> str | None:
        if commit is None:
            return None
        data = self.repo.read_kind(commit, "commit")
        if data is None:
            return None
        return commit_tree_and_parents(data)[0]

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        return self.repo.write_object("commit", encode_commit(tree, parents, message))

    def edit(self, apply, message: str, attempts: int = 50) -> str | None:
        """Run apply(editor) on the tip's tree and commit the result with compare-and-swap.

        apply must be idempotent: on a race it runs again on the new tip. Returns the new tip
        (the old one if apply changed nothing).
        """
        for _ in range(attempts):
            old = self.tip()
            old_tree = self._tree_of_tip(old)
            editor = TreeEditor(self.repo, old_tree)
            apply(editor)
            tree = editor.write()
            if tree == old_tree:
                return old
            commit = self._commit(tree, [old] if old else [], message)
            if self.repo.update_ref(self.ref, commit, old, message):
                return commit
        raise RuntimeError(f"could not update {self.ref}: too many concurrent writers")



class SnapshotRef(CasRef):
    """A local-only ref: each update a parentless commit, so what it drops is garbage for `git gc` at once."""

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        return super()._commit(tree, [], message)


class HistoryRef(CasRef):
    """A shared chain (the store's metadata, the notes): every update a child of the tip it replaced, a
    merge a child of both tips; subclasses say how two trees merge (merge_trees)."""

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        raise NotImplementedError

    def merge_from(self, other: str, message: str) -> str:
        """Merge commit `other` (a remote's tip, exactly as fetched) into our ref.

        The result always descends from `other` (so pushing it is a fast-forward of that tip) and
        never loses an entry of ours: theirs is merged through merge_trees, which validates it.
        """
        theirs = self.tree_of(other)
        if theirs is None:
            raise ValueError(f"{other} is not a readable commit")
        return self._merge(theirs, other, message)

    def _merge(self, theirs: str, other: str | None, message: str) -> str | None:
        """Merge tree `theirs` (of commit `other`, or of no commit: then it never becomes a parent)."""
        for _ in range(50):
            old = self.tip()
            if other and (old == other or (old and self._is_ancestor(other, old))):
                return old
            ours = self._tree_of_tip(old)
            tree = self.merge_trees(ours, theirs)
            if other and tree == theirs and (old is None or self._is_ancestor(old, other)):
                new = other   # fast-forward: theirs already holds everything of ours
            elif other is None and tree == ours:
                return old   # nothing new, and no commit of theirs to descend from
            else:
                new = self._commit(tree, [p for p in (old, other) if p], message)
            if self.repo.update_ref(self.ref, new, old, message):
                return new
        raise RuntimeError(f"could not update {self.ref}: too many concurrent writers")

    def _is_ancestor(self, a: str, b: str) -> bool:
        proc = self.repo.git("merge-base", "--is-ancestor", a, b, check=False)
        return proc.returncode == 0
