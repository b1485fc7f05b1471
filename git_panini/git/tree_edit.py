"""Edits of Git trees that rewrite only the subtrees that changed."""

from __future__ import annotations

from .objects import MODE_BLOB, MODE_TREE, TreeEntry, encode_tree


class _Node:
    def __init__(self, repo, oid: str | None):
        self.entries: dict[str, TreeEntry] = {e.name: e for e in repo.read_tree(oid)} if oid else {}
        self.children: dict[str, _Node] = {}
        self.dirty = False


class TreeEditor:
    """A tree opened for edits by path ('a/b/c'); write() stores the changed trees and returns the root id."""

    def __init__(self, repo, root: str | None):
        self.repo = repo
        self.root = _Node(repo, root)

    def _node(self, parts: list[str], create: bool) -> _Node | None:
        node = self.root
        for name in parts:
            child = node.children.get(name)
            if child is None:
                entry = node.entries.get(name)
                if entry is not None and entry.is_tree:
                    child = _Node(self.repo, entry.oid)
                elif create:
                    child = _Node(self.repo, None)
                else:
                    return None
                node.children[name] = child
            node = child
        return node

    def list(self, path: str) -> list[TreeEntry]:
        node = self._node([p for p in path.split("/") if p], create=False)
        if node is None:
            return []
        names = set(node.entries) | set(node.children)
        return [node.entries.get(n) or TreeEntry(n, MODE_TREE, "") for n in sorted(names)]

    def get(self, path: str) -> TreeEntry | None:
        *dirs, name = path.split("/")
        node = self._node(dirs, create=False)
        return None if node is None else node.entries.get(name)

    def set(self, path: str, oid: str, mode: str = MODE_BLOB):
        *dirs, name = path.split("/")
        current = self._node(dirs, create=False)
        if current is not None and current.entries.get(name) == TreeEntry(name, mode, oid):
            return  # unchanged: keep the subtree clean so it is not rewritten
        node = self._mark(dirs)
        node.entries[name] = TreeEntry(name, mode, oid)

    def remove(self, path: str):
        *dirs, name = path.split("/")
        node = self._node(dirs, create=False)
        if node is not None and name in node.entries:
            self._mark(dirs)
            del node.entries[name]
            node.children.pop(name, None)

    def _mark(self, dirs: list[str]) -> _Node:
        node = self.root
        node.dirty = True
        for i in range(len(dirs)):
            node = self._node(dirs[: i + 1], create=True)
            node.dirty = True
        return node

    def write(self) -> str:
        return self._write(self.root)

    def _write(self, node: _Node) -> str:
        for name, child in node.children.items():
            if child.dirty:
                oid = self._write(child)
                if child.entries:
                    node.entries[name] = TreeEntry(name, MODE_TREE, oid)
                else:
                    node.entries.pop(name, None)  # Git has no empty trees
        node.dirty = False
        return self.repo.write_object("tree", encode_tree(node.entries.values()))
