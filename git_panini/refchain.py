"""A ref holding a commit chain that many writers extend: compare-and-swap updates and merges."""

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
            commit = self.repo.write_object("commit", encode_commit(tree, [old] if old else [], message))
            if self.repo.update_ref(self.ref, commit, old, message):
                return commit
        raise RuntimeError(f"could not update {self.ref}: too many concurrent writers")

    def merge_from(self, other: str, message: str) -> str:
        """Merge commit `other` (e.g. a remote's tip) into our ref; fast-forward when possible."""
        while True:
            old = self.tip()
            if old is None or self._is_ancestor(old, other):
                new = other
            elif self._is_ancestor(other, old):
                return old
            else:
                tree = self.merge_trees(self.tree_of(old), self.tree_of(other))
                new = self.repo.write_object("commit", encode_commit(tree, [old, other], message))
            if self.repo.update_ref(self.ref, new, old, message):
                return new

    def _is_ancestor(self, a: str, b: str) -> bool:
        return self.repo.git("merge-base", "--is-ancestor", a, b, check=False).returncode == 0
