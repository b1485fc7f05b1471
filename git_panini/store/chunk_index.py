"""The local chunk index (.git/panini/index.sqlite): chunk -> pack, and which chunks a remote already holds.

Both are derived from store trees and brought up to date by walking only the fan directories
that changed since the tree last indexed, so their cost grows with the change, not the store.
"""

from __future__ import annotations

import json
import os
import sqlite3

from ..format.manifest import ManifestError
from ..format.recipe import MAX_RECIPE_SIZE, RecipeError, parse_recipe
from ..git.repo import ObjectTooLarge
from ..git.tree_edit import TreeEditor
from . import manifests as manifest_store

SCHEMA_VERSION = 2    # 1: git-panini 0.1 (packs as trees); an index of another version is rebuilt
SCHEMA = """
create table if not exists meta (key text primary key, value text);
create table if not exists packs (pack text primary key, data text not null, deps text not null);
create table if not exists unreadable (pack text primary key, reason text not null);
create table if not exists chunks (chunk text not null, pack text not null, offset integer not null,
                                   length integer not null, primary key (chunk, pack));
create table if not exists remote_chunks (remote text not null, chunk text not null, primary key (remote, chunk));
"""


def changed_leaves(repo, old_tree: str | None, new_tree: str | None, top: str) -> tuple[list, bool]:
    """([(fan, entry)] of new_tree's 'top/<fan>/' directories ('<fan>/' at the root when top is '')
    that old_tree lacks or holds differently, whether any of old's went away)."""
    def fans(tree):
        entry = TreeEditor(repo, tree).get(top) if tree and top else None
        oid = tree if not top else (entry.oid if entry and entry.is_tree else None)
        return {e.name: e.oid for e in repo.read_tree(oid) if e.is_tree} if oid else {}
    old, new = fans(old_tree), fans(new_tree)
    added, removed = [], any(name not in new for name in old)
    for name, oid in new.items():
        if old.get(name) == oid:
            continue
        before = {e.name: e.oid for e in repo.read_tree(old[name])} if name in old else {}
        after = repo.read_tree(oid)
        names = {e.name for e in after}
        removed = removed or any(n not in names for n in before)
        added += [(name, e) for e in after if before.get(e.name) != e.oid]
    return added, removed


class ChunkIndex:
    def __init__(self, store):
        self.store = store
        self.repo = store.repo
        os.makedirs(store.repo.panini_dir, exist_ok=True)
        path = os.path.join(store.repo.panini_dir, "index.sqlite")
        self.db = sqlite3.connect(path, timeout=60)
        try:
            version = self.db.execute("pragma user_version").fetchone()[0]
        except sqlite3.DatabaseError:   # not a database (damaged): it is derived data, start over
            self.db.close()
            os.remove(path)
            self.db = sqlite3.connect(path, timeout=60)
            version = None
        if version != SCHEMA_VERSION:
            # Derived data only: rebuilt from the store trees by the next refresh.
            for (table,) in self.db.execute("select name from sqlite_master where type='table'").fetchall():
                self.db.execute(f"drop table {table}")
            self.db.execute(f"pragma user_version = {SCHEMA_VERSION}")
        self.db.executescript(SCHEMA)

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("select value from meta where key=?", (key,)).fetchone()
        return row[0] if row else None

    def refresh(self) -> int:
        """Bring the pack index up to the store's tip; returns how many packs were added."""
        tree = self.store.tree_of(self.store.tip())
        old = self._meta("store_tree")
        if old == (tree or ""):
            return 0
        added, _ = changed_leaves(self.repo, old or None, tree, "packs")
        known = {name for (name,) in self.db.execute("select pack from packs")}
        n = 0
        for _, entry in added:
            if entry.name not in known:
                self._index_pack(entry.name)
                n += 1
        self.db.execute("insert or replace into meta values ('store_tree', ?)", (tree or "",))
        self.db.commit()
        return n

    def _index_pack(self, pack: str):
        try:
            data = self.repo.read_kind(pack, "blob", MAX_RECIPE_SIZE)
            if data is None:
                raise RecipeError("its recipe blob is missing")
            recipe = parse_recipe(data, self.repo.hex_len)
        except (RecipeError, ObjectTooLarge) as e:
            self.db.execute("insert or replace into unreadable values (?,?)", (pack, str(e)))
            return
        self.db.execute("insert or ignore into packs values (?,?,?)",
                        (pack, recipe["data"], json.dumps(recipe.get("deps", []))))
        self.db.executemany("insert or ignore into chunks values (?,?,?,?)",
                            [(c, pack, off, length) for c, off, length in recipe["chunks"]])

    def locate(self, chunk: str) -> list[tuple[str, str, int, int]]:
        """(pack id, pack data blob, offset, length) for every pack that yields the chunk."""
        return self.db.execute("select c.pack, p.data, c.offset, c.length from chunks c join packs p "
                               "on c.pack = p.pack where c.chunk = ?", (chunk,)).fetchall()

    def pack_blobs(self, pack: str) -> list[str]:
        """The blobs a reader needs to decode the pack: its data and dictionaries."""
        row = self.db.execute("select data, deps from packs where pack = ?", (pack,)).fetchone()
        return [row[0], *json.loads(row[1])] if row else []

    def is_packed(self, chunk: str) -> bool:
        return self.db.execute("select 1 from chunks where chunk = ? limit 1", (chunk,)).fetchone() is not None

    def unreadable_packs(self) -> int:
        """Packs whose recipe could not be read: any chunk they hold looks missing."""
        return self.db.execute("select count(*) from unreadable").fetchone()[0]

    # --- what a remote already holds ----------------------------------------------------------------
    def sync_remote(self, remote: str, commit: str | None):
        """Index the chunks a remote's store (its tip `commit`, as fetched) already holds: those of its
        manifests (an honest writer publishes a manifest in the same atomic push as the chunks it
        needs, so these never have to be sent again). A pack's recipe is no evidence: it only
        claims what it yields, and every chunk a pack holds belongs to some manifest anyway."""
        tree = self.store.tree_of(commit) if commit else None
        key = f"remote_tree:{remote}"
        old = self._meta(key)
        if old == (tree or ""):
            return
        manifests, gone = changed_leaves(self.repo, old or None, tree, "manifests")
        if gone:   # another remote behind the same name, or a rewritten store: start over
            self.db.execute("delete from remote_chunks where remote = ?", (remote,))
            manifests = changed_leaves(self.repo, None, tree, "manifests")[0] if tree else []
        rows = []
        for _, entry in manifests:
            try:
                chunks = manifest_store.load(self.repo, entry.name)
            except ManifestError:
                continue
            rows += [(remote, c) for c in chunks.chunks] if chunks else []
        self.db.executemany("insert or ignore into remote_chunks values (?,?)", rows)
        self.db.execute("insert or replace into meta values (?, ?)", (key, tree or ""))
        self.db.commit()

    def on_some_remote(self, chunk: str) -> bool:
        return self.db.execute("select 1 from remote_chunks where chunk = ? limit 1", (chunk,)).fetchone() is not None

    def remote_has(self, remote: str, chunk: str) -> bool:
        return self.db.execute("select 1 from remote_chunks where remote = ? and chunk = ?",
                               (remote, chunk)).fetchone() is not None

    def close(self):
        self.db.close()
