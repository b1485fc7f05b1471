"""The local chunk index (.git/panini/index.sqlite): chunk id -> pack and offset, rebuilt from store diffs."""

from __future__ import annotations

import os
import sqlite3

from .recipe import recipe_chunks
from .treeedit import TreeEditor

SCHEMA = """
create table if not exists meta (key text primary key, value text);
create table if not exists packs (pack text primary key, tree text not null);
create table if not exists unreadable (pack text primary key, reason text not null);
create table if not exists chunks (chunk text not null, pack text not null, offset integer not null,
                                   length integer not null, primary key (chunk, pack));
"""


class ChunkIndex:
    def __init__(self, store):
        self.store = store
        os.makedirs(store.repo.panini_dir, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(store.repo.panini_dir, "index.sqlite"), timeout=60)
        self.db.executescript(SCHEMA)

    def refresh(self) -> int:
        """Bring the index up to the store's tip; returns how many packs were added."""
        tip = self.store.tip()
        row = self.db.execute("select value from meta where key='packs_tree'").fetchone()
        tree = self.store.tree_of(tip)
        packs_tree = TreeEditor(self.store.repo, tree).get("packs") if tree else None
        new_oid = packs_tree.oid if packs_tree else ""
        if row and row[0] == new_oid:
            return 0
        known = {name for (name,) in self.db.execute("select pack from packs")}
        added = 0
        editor = TreeEditor(self.store.repo, new_oid) if new_oid else None
        for fan_dir in (editor.list("") if editor else []):
            for pack in editor.list(fan_dir.name):
                if pack.name in known:
                    continue
                entries, problem = recipe_chunks(self.store.repo, pack.oid)
                if problem:
                    self.db.execute("insert or replace into unreadable values (?,?)", (pack.name, problem))
                for chunk, offset, length in entries:
                    self.db.execute("insert or ignore into chunks values (?,?,?,?)", (chunk, pack.name, offset, length))
                self.db.execute("insert or ignore into packs values (?,?)", (pack.name, pack.oid))
                added += 1
        self.db.execute("insert or replace into meta values ('packs_tree', ?)", (new_oid,))
        self.db.commit()
        return added

    def locate(self, chunk: str) -> list[tuple[str, str, int, int]]:
        """(pack id, pack tree oid, offset, length) for every pack that yields the chunk."""
        return self.db.execute("select c.pack, p.tree, c.offset, c.length from chunks c join packs p "
                               "on c.pack = p.pack where c.chunk = ?", (chunk,)).fetchall()

    def is_packed(self, chunk: str) -> bool:
        return self.db.execute("select 1 from chunks where chunk = ? limit 1", (chunk,)).fetchone() is not None

    def unreadable_packs(self) -> int:
        """Packs whose recipe could not be read: any chunk they hold looks missing."""
        return self.db.execute("select count(*) from unreadable").fetchone()[0]

    def close(self):
        self.db.close()
