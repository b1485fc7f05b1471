"""The store: refs/panini/store, the shared chain of metadata that says which files exist and how to read them.

Tree of every store commit (format git-panini-store/2):

    config                      "format git-panini-store/2" + "chunker ..." (fixed when the store is created)
    manifests/<2 hex>/<oid>     manifest blobs of files some pushed commit references
    packs/<2 hex>/<id>          pack recipes (JSON); <id> is the recipe blob's id, the recipe names its data blob
    raw/<2 hex>/<commit>        one line per chunk that the raw batch refs/panini/raw/<commit> holds
    bulk/<2 hex>/<commit>       one line per blob (pack data, dictionaries) that refs/panini/packs/<commit> holds

The bulk bytes are not in this tree, so fetching it moves metadata only: raw chunks live in
refs/panini/raw/<commit> (one parentless commit per push, deleted once every chunk is in a
verified pack) and pack data in refs/panini/packs/<commit> (one per worker push). Readers fetch
those blobs by id, only the ones the files they check out need.

The lists are hints: what a remote holds is proven by recomputing its bulk refs' commits (store/bulk.py).
Every path is content-addressed, so two stores merge as a union; a remote's tree is validated
entry by entry first (merge_trees) and can only add entries, never replace or drop ours.
"""

from __future__ import annotations

import re

from ..format.chunking import ChunkParams
from ..git.cas_refs import HistoryRef
from ..git.objects import MODE_BLOB, ObjectFormatError, TreeEntry
from ..git.repo import GitError, ObjectTooLarge
from ..git.tree_edit import TreeEditor

STORE_REF = "refs/panini/store"
RAW_REFS = "refs/panini/raw/"
PACK_REFS = "refs/panini/packs/"
FORMAT = "git-panini-store/2"
MAX_CONFIG_SIZE = 4096
MAX_LIST_SIZE = 64 << 20


def fan(oid: str) -> str:
    return f"{oid[:2]}/{oid}"


def manifest_path(oid: str) -> str:
    return "manifests/" + fan(oid)


def pack_path(recipe_oid: str) -> str:
    return "packs/" + fan(recipe_oid)


def bulk_list_path(commit: str) -> str:
    return f"bulk/{fan(commit)}"


def raw_list_path(batch: str) -> str:
    return "raw/" + fan(batch)


class StoreError(Exception):
    pass


def config_blob(params: ChunkParams) -> bytes:
    return f"format {FORMAT}\n{params.encode()}".encode()


def parse_config(data: bytes | None) -> ChunkParams:
    if data is None or len(data) > MAX_CONFIG_SIZE:
        raise StoreError("the store has no readable config")
    try:
        lines = data.decode().splitlines()
    except UnicodeDecodeError:
        raise StoreError("the store config is not text") from None
    # Format 1 (git-panini 0.1) has the same chunker line; legacy/format1.py converts the rest of its tree.
    if not lines or lines[0] not in (f"format {FORMAT}", "format git-panini-store/1"):
        raise StoreError(f"the store config is not {FORMAT} (first line {lines[0][:60] if lines else ''!r})")
    for line in lines[1:]:
        if line.startswith("chunker "):
            try:
                return ChunkParams.parse(line)
            except ValueError as e:
                raise StoreError(f"the store config has an invalid chunker: {e}") from None
    raise StoreError("the store config names no chunker")


class Store(HistoryRef):
    ref = STORE_REF

    def params(self) -> ChunkParams:
        """The chunking parameters recorded in the store (the defaults while it records none)."""
        tree = self.tree_of(self.tip())
        entry = TreeEditor(self.repo, tree).get("config") if tree else None
        if entry is None:   # not written yet (a store merged from a remote without one, say)
            return ChunkParams()
        return parse_config(self.repo.read_kind(entry.oid, "blob", MAX_CONFIG_SIZE))

    def publish(self, manifests: list[str], params: ChunkParams, message: str) -> str | None:
        """Add manifests (a remote-less worker's files) in one commit; the config first if there is none."""
        config = self.repo.write_object("blob", config_blob(params))

        def apply(editor: TreeEditor):
            if editor.get("config") is None:
                editor.set("config", config)
            for oid in manifests:
                editor.set(manifest_path(oid), oid)

        return self.edit(apply, message)

    def add_packs(self, recipes: list[str], message: str, bulk: tuple[str, str] | None = None) -> str | None:
        """Recipes, and the list of the pack data ref holding their blobs: (its commit, the list blob)."""
        def apply(editor: TreeEditor):
            for oid in recipes:
                editor.set(pack_path(oid), oid)
            if bulk:
                editor.set(bulk_list_path(bulk[0]), bulk[1])
        return self.edit(apply, message)

    def absorb(self, tree: str, message: str) -> str | None:
        """Merge a tree that has no commit of its own (a converted format-1 store) as a child of our tip."""
        return self._merge(tree, None, message)

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        """Ours plus every valid entry of theirs that ours lacks; a differing entry of ours is kept."""
        editor = TreeEditor(self.repo, ours)
        if theirs is None or theirs == ours:
            return editor.write() if ours else None
        their_root = {e.name: e for e in self.repo.read_tree(theirs)}
        config = their_root.get("config")
        if editor.get("config") is None and config is not None and config.mode == MODE_BLOB:
            try:
                parse_config(self.repo.read_kind(config.oid, "blob", MAX_CONFIG_SIZE))
                editor.set("config", config.oid)
            except StoreError:
                pass   # an invalid config is never adopted; we keep the defaults until a valid one comes
        ours_root = {e.name: e for e in self.repo.read_tree(ours)} if ours else {}
        hex_len = self.repo.hex_len
        for top, name_is_oid in TOPS.items():
            mine, their = ours_root.get(top), their_root.get(top)
            if their is None or not their.is_tree or (mine is not None and mine.oid == their.oid):
                continue
            for fan_entry in read_fanout(self.repo, their.oid) or []:
                if not fan_entry.is_tree or not FAN.fullmatch(fan_entry.name):
                    continue
                ours_fan = editor.get(f"{top}/{fan_entry.name}")
                if ours_fan is not None and ours_fan.oid == fan_entry.oid:
                    continue
                have = {e.name for e in editor.list(f"{top}/{fan_entry.name}")}
                for e in read_fanout(self.repo, fan_entry.oid) or []:
                    if e.name in have or not valid_leaf(e, fan_entry.name, hex_len, name_is_oid):
                        continue
                    editor.set(f"{top}/{fan_entry.name}/{e.name}", e.oid)
        return editor.write()

    # --- reads -----------------------------------------------------------------------------------
    def manifests(self, commit: str | None = None) -> list[str]:
        return [e.name for e in leaves(self.repo, self.tree_of(commit or self.tip()), "manifests", name_is_oid=True)]

    def has_manifest(self, oid: str, commit: str | None = None) -> bool:
        tree = self.tree_of(commit or self.tip())
        return tree is not None and TreeEditor(self.repo, tree).get(manifest_path(oid)) is not None

    def raw_batches(self, commit: str | None = None) -> dict[str, str]:
        """{raw batch commit: its list blob} as this store records them."""
        return {e.name: e.oid for e in leaves(self.repo, self.tree_of(commit or self.tip()), "raw")}


FAN = re.compile(r"[0-9a-f]{2}")
_HEX = re.compile(r"[0-9a-f]+")
# The fan-out directories of a store tree, and whether a leaf's name is its own blob id.
TOPS = {"manifests": True, "packs": True, "raw": False, "bulk": False}   # top directory: its leaves named by their blob


def valid_leaf(entry: TreeEntry, fan_name: str, hex_len: int, name_is_oid: bool, mode: str = MODE_BLOB) -> bool:
    """A content-addressed leaf: a plain blob (or `mode`) named by a full lowercase id under its own fan directory."""
    return (entry.mode == mode and len(entry.name) == hex_len and _HEX.fullmatch(entry.name) is not None
            and entry.name[:2] == fan_name and (not name_is_oid or entry.oid == entry.name))


def read_fanout(repo, oid: str) -> list[TreeEntry] | None:
    """A tree of a store's fan-out, or None where no store writes such a tree (too large, or not a tree
    object that parses): quarantined, never read."""
    try:
        return repo.read_tree(oid)
    except (ObjectTooLarge, ObjectFormatError, GitError):
        return None


def leaves(repo, tree: str | None, top: str, name_is_oid: bool = False, mode: str = MODE_BLOB) -> list[TreeEntry]:
    """The valid entries of a two-level fanout directory ('top/<2 hex>/<full id>'). A malformed one (a name
    that is not a lowercase id of its fan directory, not UTF-8, another kind of entry; a fan directory no
    store writes) is skipped: it affects only itself (malformed_entries names it, for fsck)."""
    root = read_fanout(repo, tree) if tree else None
    entry = next((e for e in root or [] if e.name == top and e.is_tree), None)
    out = []
    for fan_dir in (read_fanout(repo, entry.oid) or []) if entry else []:
        if fan_dir.is_tree and FAN.fullmatch(fan_dir.name):
            out.extend(e for e in read_fanout(repo, fan_dir.oid) or []
                       if valid_leaf(e, fan_dir.name, repo.hex_len, name_is_oid, mode))
    return out


def shown(path: str) -> str:
    """A tree path as one printable line: bytes that are not printable ASCII (not UTF-8, a newline) escaped."""
    return repr(path.encode("utf-8", "surrogateescape"))[2:-1]


def malformed_entries(repo, tree: str | None) -> list[str]:
    """The paths (shown()) of a store tree's entries that no git-panini writes, under manifests/, packs/ and
    raw/: every reader skips them (merge_trees never takes them in, leaves() never lists them)."""
    if tree is None:
        return []
    out = []
    root = read_fanout(repo, tree) or []
    for top in (e for e in root if e.name in TOPS):
        if not top.is_tree:
            out.append(shown(top.name) + " (not a directory)")
            continue
        fans = read_fanout(repo, top.oid)
        if fans is None:
            out.append(shown(top.name) + "/ (a tree no store writes)")
            continue
        for fan_dir in fans:
            where = f"{top.name}/{fan_dir.name}"
            if not fan_dir.is_tree or not FAN.fullmatch(fan_dir.name):
                out.append(shown(where) + " (not a fan-out directory)")
                continue
            found = read_fanout(repo, fan_dir.oid)
            if found is None:
                out.append(shown(where) + "/ (a tree no store writes)")
                continue
            out += [shown(f"{where}/{e.name}") for e in found
                    if not valid_leaf(e, fan_dir.name, repo.hex_len, TOPS[top.name])]
    return out


def parse_list(data: bytes | None, hex_len: int) -> list[str]:
    """A raw batch's list blob: one chunk id per line; malformed lines are skipped."""
    if not data:
        return []
    return [line for line in data.decode("ascii", "replace").splitlines()
            if len(line) == hex_len and _HEX.fullmatch(line)]
