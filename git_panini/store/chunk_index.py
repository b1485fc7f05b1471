"""The local chunk index (.git/panini/index.sqlite): chunk -> pack, which packs this side decoded and
re-hashed whole, and which chunks a remote is proven to hold.

The pack index is derived from store trees and brought up to date by walking only the fan directories
that changed since the tree last indexed, so its cost grows with the change, not the store. What a remote
holds is learnt from its bulk refs, never from its metadata (store/bulk.py says what proves it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3

from ..format.recipe import MAX_RECIPE_SIZE, RecipeError, parse_recipe
from ..git.repo import ObjectTooLarge
from ..git.tree_edit import TreeEditor
from . import bulk
from .shared import FAN, MAX_LIST_SIZE, PACK_REFS, RAW_REFS, malformed_entries, parse_list, read_fanout, valid_leaf

# 1: git-panini 0.1 (packs as trees); 2: a remote's chunks taken from its manifests (metadata, not proof);
# an index of another version is rebuilt.
SCHEMA_VERSION = 3
SCHEMA = """
create table if not exists meta (key text primary key, value text);
create table if not exists packs (pack text primary key, data text not null, deps text not null);
create table if not exists unreadable (pack text primary key, reason text not null);
create table if not exists chunks (chunk text not null, pack text not null, offset integer not null,
                                   length integer not null, primary key (chunk, pack));
create table if not exists verified_packs (pack text primary key);
create table if not exists pack_sizes (pack text primary key, size integer not null, encoded integer not null);
create table if not exists pack_bases (pack text primary key, base text not null);
create table if not exists retired_packs (pack text primary key);
create table if not exists fetched (blob text primary key);
create table if not exists remote_refs (remote text not null, ref text not null, target text not null,
                                        proven integer not null, primary key (remote, ref));
create table if not exists remote_lost (remote text not null, ref text not null, primary key (remote, ref));
create table if not exists remote_blobs (remote text not null, blob text not null, ref text not null,
                                         primary key (remote, blob, ref));
create table if not exists scanned_tips (remote text not null, tip text not null, primary key (remote, tip));
create table if not exists scanned_pointers (remote text not null, blob text not null, path text not null,
                                             manifest text, error text, primary key (remote, blob));
create table if not exists manifest_chunks (manifest text primary key, chunks text not null);
create table if not exists verified_files (remote text not null, manifest text not null, chunks integer not null,
                                           primary key (remote, manifest));
"""


def changed_leaves(repo, old_tree: str | None, new_tree: str | None, top: str, valid=None) -> tuple[list, list]:
    """([(fan, entry)] of new_tree's 'top/<fan>/' directories ('<fan>/' at the root when top is '')
    that old_tree lacks or holds differently, [names] of old's that went away). Only valid entries count:
    valid(fan, entry) (default: a store leaf named by its blob's id); a malformed one, like a fan directory
    no store writes, is skipped on both sides (quarantined: it affects only itself)."""
    if valid is None:
        valid = lambda fan, e: valid_leaf(e, fan, repo.hex_len, name_is_oid=True)   # noqa: E731

    def fans(tree):
        entry = TreeEditor(repo, tree).get(top) if tree and top else None
        oid = tree if not top else (entry.oid if entry and entry.is_tree else None)
        found = read_fanout(repo, oid) if oid else None
        return {e.name: e.oid for e in found or [] if e.is_tree and FAN.fullmatch(e.name)}

    def entries(fan, oid):
        return [e for e in read_fanout(repo, oid) or [] if valid(fan, e)]
    old, new = fans(old_tree), fans(new_tree)
    added, removed = [], []
    for name, oid in old.items():
        if name not in new:
            removed += [e.name for e in entries(name, oid)]
    for name, oid in new.items():
        if old.get(name) == oid:
            continue
        before = {e.name: e.oid for e in entries(name, old[name])} if name in old else {}
        after = entries(name, oid)
        names = {e.name for e in after}
        removed += [n for n in before if n not in names]
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
            for stale in (path, path + "-wal", path + "-shm"):   # its log replayed into a new file would be stale
                with contextlib.suppress(FileNotFoundError):
                    os.remove(stale)
            self.db = sqlite3.connect(path, timeout=60)
            version = None
        if version != SCHEMA_VERSION:
            # Derived data only: rebuilt from the store trees by the next refresh.
            for (table,) in self.db.execute("select name from sqlite_master where type='table'").fetchall():
                self.db.execute(f"drop table {table}")
            self.db.execute(f"pragma user_version = {SCHEMA_VERSION}")
        # A commit that waits on no fsync (a write-ahead log synced at checkpoints): a crash or kill -9 loses
        # nothing committed, a power cut at most the last commits, and every row here is derived again or
        # re-proven when missing; a commit with three fsyncs cost each command up to 50 ms.
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=normal")
        self.db.executescript(SCHEMA)

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("select value from meta where key=?", (key,)).fetchone()
        return row[0] if row else None

    def last_seen(self, remote: str, ref: str) -> str | None:
        """The tip of the remote's `ref` this clone last merged."""
        return self._meta(f"seen:{remote}:{ref}")

    def saw(self, remote: str, ref: str, tip: str):
        if self.last_seen(remote, ref) != tip:   # a commit syncs the disk: none when nothing changed
            self.db.execute("insert or replace into meta values (?, ?)", (f"seen:{remote}:{ref}", tip))
            self.db.commit()

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
        self._note_size(pack, recipe)
        if recipe.get("base"):
            self.db.execute("insert or replace into pack_bases values (?,?)", (pack, recipe["base"]))

    def _note_size(self, pack: str, recipe: dict):
        self.db.execute("insert or replace into pack_sizes values (?,?,?)",
                        (pack, recipe["size"],
                         recipe.get("encoded_size") or self.repo.reader.size(recipe["data"]) or recipe["size"]))

    def locate(self, chunk: str) -> list[tuple[str, str, int, int]]:
        """(pack id, pack data blob, offset, length) for every pack that yields the chunk. A delta pack counts
        only when its base is a known pack with no base itself: one whose base is not in the store (or is
        a delta) yields nothing, so no reader, proof or retirement leans on it."""
        return self.db.execute(
            "select c.pack, p.data, c.offset, c.length from chunks c join packs p on c.pack = p.pack "
            "left join pack_bases d on d.pack = c.pack where c.chunk = ? and (d.base is null or ("
            "d.base in (select pack from packs) and d.base not in (select pack from pack_bases)))",
            (chunk,)).fetchall()

    def pack_size(self, pack: str) -> tuple[int, int]:
        """(decoded, encoded) bytes of the pack's data: what reading any chunk of it decodes, and fetches
        (dictionaries apart). Indexes written before sizes were kept learn them from the recipe here."""
        row = self.db.execute("select size, encoded from pack_sizes where pack = ?", (pack,)).fetchone()
        if row is None:
            try:
                self._note_size(pack, parse_recipe(self.repo.read_kind(pack, "blob", MAX_RECIPE_SIZE) or b"",
                                                   self.repo.hex_len))
            except (RecipeError, ObjectTooLarge):
                return 0, 0
            row = self.db.execute("select size, encoded from pack_sizes where pack = ?", (pack,)).fetchone()
        return row

    def pack_chunks(self, pack: str) -> list[tuple[str, int]]:
        """(chunk, length) of every chunk the pack's recipe lists."""
        return self.db.execute("select chunk, length from chunks where pack = ?", (pack,)).fetchall()

    def pack_base(self, pack: str) -> str | None:
        """The pack whose decoded bytes this one's codec matches against (recipe format 2), if any."""
        row = self.db.execute("select base from pack_bases where pack = ?", (pack,)).fetchone()
        return row[0] if row else None

    def packs_using(self, blobs) -> list[str]:
        """The packs whose data blob or a dictionary is one of these (a pack data ref's blobs)."""
        blobs = sorted(set(blobs))
        out: set[str] = set()
        for i in range(0, len(blobs), 500):
            part = blobs[i:i + 500]
            marks = ",".join("?" * len(part))
            out.update(p for (p,) in self.db.execute(f"select pack from packs where data in ({marks})", part))
            data = {d for (d,) in self.db.execute(f"select data from packs where data in ({marks})", part)}
            for blob in part:   # a dictionary is no pack's data; few are
                if blob not in data:
                    out.update(p for (p,) in self.db.execute("select pack from packs where deps like ?",
                                                             (f'%"{blob}"%',)))
        return sorted(out)

    def deltas_of(self, base: str) -> list[str]:
        """The packs whose recipe names this pack as its base."""
        return [p for (p,) in self.db.execute("select pack from pack_bases where base = ?", (base,))]

    def mark_retired(self, packs):
        """A remote dropped these packs from its store (a worker retired them, work/retire.py): readers
        choose them only where no other pack yields a chunk (read_cost.choose_packs). A hint, never a proof."""
        self.db.executemany("insert or ignore into retired_packs values (?)", [(p,) for p in packs])
        self.db.commit()

    def retired(self) -> set[str]:
        return {p for (p,) in self.db.execute("select pack from retired_packs")}

    def own_blobs(self, pack: str) -> list[str]:
        """The pack's data blob and dictionaries (not its base's)."""
        row = self.db.execute("select data, deps from packs where pack = ?", (pack,)).fetchone()
        return [row[0], *json.loads(row[1])] if row else []

    def pack_blobs(self, pack: str) -> list[str]:
        """The blobs a reader needs to decode the pack: its data and dictionaries, and its base pack's."""
        own = self.own_blobs(pack)
        base = self.pack_base(pack)
        if not own or base is None:
            return own
        return own + (self.own_blobs(base) or [base])

    def unreadable_packs(self) -> int:
        """Packs whose recipe could not be read: any chunk they hold looks missing."""
        return self.db.execute("select count(*) from unreadable").fetchone()[0]

    # --- packs this side decoded --------------------------------------------------------------------
    def mark_verified(self, pack: str):
        """The pack was decoded here and every chunk its recipe claims re-hashed to its id."""
        self.db.execute("insert or ignore into verified_packs values (?)", (pack,))
        self.db.commit()

    def mark_fetched(self, blobs):
        """A remote served these blobs by id (a checkout's fetch): what a later clean may dedup against."""
        self.db.executemany("insert or ignore into fetched values (?)", [(b,) for b in blobs])
        self.db.commit()

    def was_fetched(self, blob: str) -> bool:
        return self.db.execute("select 1 from fetched where blob = ?", (blob,)).fetchone() is not None

    def is_verified(self, pack: str) -> bool:
        return self.db.execute("select 1 from verified_packs where pack = ?", (pack,)).fetchone() is not None

    # --- what a remote is proven to hold ------------------------------------------------------------
    def prove_remote(self, remote: str, refs: dict[str, str], lists: dict[str, str | None],
                     retired=lambda ref, commit, blobs: False) -> list[str]:
        """Learn what the remote's bulk refs hold: `refs` {ref: commit} as the remote listed them now,
        `lists` {commit: the list blob its store records, or None}. A ref counts only when its list
        recomputes to its commit (bulk.proves); refs gone from the remote are forgotten at once, and
        returned. retired(ref, commit, the blobs it held): a pack data ref gone with its packs, retired by a
        worker (asked once the refs there now are proven)."""
        known = {ref: (target, proven) for ref, target, proven in self.db.execute(
            "select ref, target, proven from remote_refs where remote = ?", (remote,))}
        gone = [ref for ref, (target, _) in known.items() if refs.get(ref) != target]
        held = {ref: self.proven_blobs(remote, ref) for ref in gone if ref.startswith(PACK_REFS) and ref not in refs}
        self.db.executemany("delete from remote_lost where remote = ? and ref = ?", [(remote, ref) for ref in refs])
        for ref, (target, _) in known.items():
            if refs.get(ref) != target:
                self.db.execute("delete from remote_refs where remote = ? and ref = ?", (remote, ref))
                self.db.execute("delete from remote_blobs where remote = ? and ref = ?", (remote, ref))
        for ref, commit in refs.items():
            if known.get(ref, (None, 0)) == (commit, 1):
                continue
            blobs = self._proven_list(ref, commit, lists.get(commit))
            self.db.execute("insert or replace into remote_refs values (?,?,?,?)", (remote, ref, commit, int(bool(blobs))))
            self.db.executemany("insert or ignore into remote_blobs values (?,?,?)", [(remote, b, ref) for b in blobs])
        # Pack data goes only with its packs (work/retire.py): a ref deleted while the remote's store still
        # names its data is remembered as lost until a repair pushes it back.
        self.db.executemany("insert or ignore into remote_lost values (?,?)",
                            [(remote, ref) for ref in gone if ref.startswith(PACK_REFS)
                             and (ref not in held or not retired(ref, known[ref][0], held[ref]))])
        self.db.commit()
        return gone

    def _proven_list(self, ref: str, commit: str, listing: str | None) -> list[str]:
        if listing is None:
            return []
        try:
            blobs = parse_list(self.repo.read_kind(listing, "blob", MAX_LIST_SIZE), self.repo.hex_len)
        except ObjectTooLarge:
            return []
        return blobs if bulk.proves(commit, blobs, ref.startswith(RAW_REFS), self.repo.algo) else []

    def lost_refs(self, remote: str) -> list[str]:
        """Pack data refs the remote had and no longer has, since the last repair."""
        return [ref for (ref,) in self.db.execute("select ref from remote_lost where remote = ?", (remote,))]

    def repaired(self, remote: str):
        self.db.execute("delete from remote_lost where remote = ?", (remote,))
        self.db.commit()

    def remote_bulk_refs(self, remote: str) -> dict[str, str]:
        """{ref: commit} of the remote's bulk refs as last listed (proven or not)."""
        return dict(self.db.execute("select ref, target from remote_refs where remote = ?", (remote,)))

    def proven_blobs(self, remote: str, ref: str) -> list[str]:
        """The blobs a bulk ref of the remote (a raw batch's chunks, pack data) is proven to hold (none when
        unproven)."""
        return [b for (b,) in self.db.execute("select blob from remote_blobs where remote = ? and ref = ?",
                                              (remote, ref))]

    def holders(self, remote: str, blob: str) -> set[str]:
        """The bulk refs of the remote proven to hold this blob."""
        return {r for (r,) in self.db.execute("select ref from remote_blobs where remote = ? and blob = ?",
                                              (remote, blob))}

    def remote_blobs(self, remote: str) -> set[str]:
        """Every blob the remote's bulk refs are proven to hold (one query, for a check of many files)."""
        return {b for (b,) in self.db.execute("select blob from remote_blobs where remote = ?", (remote,))}

    def remote_holds_blob(self, remote: str | None, blob: str, pack_refs_only: bool = False) -> bool:
        """A bulk ref of the remote (of any remote: None) is proven to hold this blob; pack_refs_only: a
        pack data ref (refs/panini/packs/*), never a raw batch, which a worker may retire."""
        if pack_refs_only:
            return self.db.execute("select 1 from remote_blobs where remote = ? and blob = ? and ref like ? limit 1",
                                   (remote, blob, PACK_REFS + "%")).fetchone() is not None
        if remote is None:
            return self.db.execute("select 1 from remote_blobs where blob = ? limit 1", (blob,)).fetchone() is not None
        return self.db.execute("select 1 from remote_blobs where remote = ? and blob = ? limit 1",
                               (remote, blob)).fetchone() is not None

    def remote_has(self, remote: str | None, chunk: str) -> bool:
        """The remote (any remote: None) holds the chunk: raw in a proven batch, or through a pack this
        side decoded and re-hashed whose every blob a proven bulk ref of that remote holds."""
        if self.remote_holds_blob(remote, chunk):
            return True
        return any(self.is_verified(pack) and all(self.remote_holds_blob(remote, b) for b in self.pack_blobs(pack))
                   for pack, _, _, _ in self.locate(chunk))

    def on_some_remote(self, chunk: str) -> bool:
        return self.remote_has(None, chunk)

    # --- what a remote's branches and tags reference (fsck --remote) ---------------------------------
    # Facts about objects, never about what the remote holds: a blob's pointer and a manifest's chunks
    # never change, and the pointers of a history are those of its tips, so a check reads only what is new.
    def scanned(self, remote: str) -> tuple[list[str], list[tuple[str, str, str | None, str | None]]]:
        """(the remote's branch and tag tips last scanned, [(path, blob, manifest, error)] of the pointers
        their history holds: manifest None for a malformed one, error saying why)."""
        tips = [t for (t,) in self.db.execute("select tip from scanned_tips where remote = ? order by tip", (remote,))]
        found = self.db.execute("select path, blob, manifest, error from scanned_pointers where remote = ?",
                                (remote,)).fetchall()
        return tips, found

    def record_scan(self, remote: str, tips: list[str], found, replace: bool):
        """The history of `tips` holds the pointers `found` ((path, blob, manifest, error)) as well as the
        ones recorded before (replace: instead of them)."""
        if replace:
            self.db.execute("delete from scanned_pointers where remote = ?", (remote,))
        self.db.execute("delete from scanned_tips where remote = ?", (remote,))
        self.db.executemany("insert or ignore into scanned_tips values (?,?)", [(remote, t) for t in tips])
        self.db.executemany("insert or ignore into scanned_pointers values (?,?,?,?,?)",
                            [(remote, blob, path, manifest, error) for path, blob, manifest, error in found])
        self.db.commit()

    def verified_files(self, remote: str, tree: str | None) -> dict[str, int]:
        """{manifest: its distinct chunks} of those a check found every chunk of held by the remote, as long as that still stands:
        every bulk ref proven then is proven now with the same commit (held blobs never went away), and
        the remote's store (now `tree`) lost no manifest or pack entry since. Anything else forgets them."""
        saved = self._meta(f"verified:{remote}")
        if not saved or tree is None:
            return {}
        saved = json.loads(saved)
        stands = {tuple(r) for r in saved["refs"]} <= set(self._proven_refs(remote)) and (
            saved["tree"] == tree or not any(changed_leaves(self.repo, saved["tree"], tree, top)[1]
                                             for top in ("manifests", "packs")))
        if not stands:
            self.db.execute("delete from verified_files where remote = ?", (remote,))
            self.db.execute("delete from meta where key = ?", (f"verified:{remote}",))
            self.db.commit()
            return {}
        return dict(self.db.execute("select manifest, chunks from verified_files where remote = ?", (remote,)))

    def add_verified_files(self, remote: str, tree: str, manifests: dict[str, int]):
        """These manifests' chunks ({manifest: how many}) are all held by the remote now, its store `tree`
        listing them: added to what verified_files() returns, as of the bulk refs proven now and this tree."""
        self.db.executemany("insert or ignore into verified_files values (?,?,?)",
                            [(remote, m, n) for m, n in manifests.items()])
        self.db.execute("insert or replace into meta values (?, ?)", (f"verified:{remote}", json.dumps(
            {"tree": tree, "refs": self._proven_refs(remote)})))
        self.db.commit()

    def _proven_refs(self, remote: str) -> list[tuple[str, str]]:
        return self.db.execute("select ref, target from remote_refs where remote = ? and proven = 1 order by ref",
                               (remote,)).fetchall()

    def malformed_entries(self, tree: str | None) -> list[str]:
        """shared.malformed_entries(tree), remembered for the last tree asked about (a tree never changes)."""
        saved = json.loads(self._meta("malformed") or "{}")
        if tree is not None and saved.get("tree") == tree:
            return saved["entries"]
        found = malformed_entries(self.repo, tree)
        if tree is not None:
            self.db.execute("insert or replace into meta values ('malformed', ?)",
                            (json.dumps({"tree": tree, "entries": found}),))
            self.db.commit()
        return found

    def manifest_chunks(self, manifests) -> dict[str, list[str]]:
        """{manifest: its distinct chunks} of those a check read before."""
        manifests, out = list(manifests), {}
        for i in range(0, len(manifests), 500):
            part = manifests[i:i + 500]
            out.update((m, chunks.split()) for m, chunks in self.db.execute(
                f"select manifest, chunks from manifest_chunks where manifest in ({','.join('?' * len(part))})", part))
        return out

    def remember_manifests(self, chunks: dict[str, list[str]]):
        self.db.executemany("insert or ignore into manifest_chunks values (?,?)",
                            [(m, " ".join(c)) for m, c in chunks.items()])
        self.db.commit()

    def close(self):
        self.db.close()
