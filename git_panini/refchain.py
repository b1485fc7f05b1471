"""A ref that many writers update: snapshot commits, compare-and-swap updates and union merges.

Each update is a parentless commit (a snapshot of the whole tree). Keeping no history is what
lets a raw chunk that a pack replaced become unreachable, so `git gc` frees its bytes; the
trees merge as unions, so no history is needed to merge two writers' snapshots.
"""

from __future__ import annotations

from .objects import commit_tree_and_parents, encode_commit
from .treeedit import TreeEditor


class RefChain:
    """Base for the store and the notes: subclasses say how two trees merge (a deterministic union)."""

    ref: str = ""

    def __init__(self, repo):
        self.repo = repo

    def tip(self) -> str | None:
        return self.repo.ref(self.ref)

    def tree_of(self, commit: str | None) -> str | None:
        if commit is None:
            return None
        data = self.repo.read_kind(commit, "commit")
        if data is None:
            return None
        return commit_tree_and_parents(data)[0]

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        raise NotImplementedError

    def edit(self, apply, message: str, attempts: int = 50) -> str | None:
        """Run apply(editor) on the tip's tree and commit the result with compare-and-swap.

        apply must be idempotent: on a race it runs again on the new tip. Returns the new tip
        (the old one if apply changed nothing).
        """
        for _ in range(attempts):
            old = self.tip()
            old_tree = self.tree_of(old)
            editor = TreeEditor(self.repo, old_tree)
            apply(editor)
            tree = editor.write()
            if tree == old_tree:
                return old
            commit = self.repo.write_object("commit", encode_commit(tree, [], message))
            if self.repo.update_ref(self.ref, commit, old, message):
                return commit
        raise RuntimeError(f"could not update {self.ref}: too many concurrent writers")

    def merge_from(self, other: str, message: str) -> str:
        """Merge snapshot `other` (e.g. a remote's tip) into our ref; adopt it as is when it holds all of ours."""
        theirs = self.tree_of(other)
        if theirs is None:
            raise ValueError(f"{other} is not a readable commit")
        while True:
            old = self.tip()
            ours = self.tree_of(old)
            tree = self.merge_trees(ours, theirs)
            if tree == ours:
                return old
            new = other if tree == theirs else self.repo.write_object("commit", encode_commit(tree, [], message))
            if self.repo.update_ref(self.ref, new, old, message):
                return new
