"""Status notes: refs/notes/panini, one JSON note per manifest, which double as the work queue."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from ..git.cas_refs import HistoryRef
from ..git.objects import MODE_BLOB, TreeEntry
from ..git.repo import ObjectTooLarge
from ..git.tree_edit import TreeEditor

NOTES_REF = "refs/notes/panini"
# Merge order: a higher rank wins; ties go to the later `updated`.
STATE_RANK = {"pending": 0, "queued": 1, "processing": 2, "failed": 3, "completed": 4}
MAX_NOTE_SIZE = 64 << 10
_FAN = re.compile(r"[0-9a-f]{2}")
_HEX = re.compile(r"[0-9a-f]+")
# Fields readers rely on, and the types they accept (None is always accepted).
_FIELDS = {"bytes": int, "chunks": int, "unique_chunks": int, "unique_bytes": int, "stored_bytes": int,
           "attempts": int, "updated": str, "lease_until": str, "worker": str, "job": str, "error": str,
           "codecs": dict, "host": str, "pid": int, "pid_ns": str, "pid_started": str, "prior": str}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_note(raw_bytes: int, chunks: int, unique_chunks: int, unique_bytes: int) -> dict:
    return {"status": "pending", "bytes": raw_bytes, "chunks": chunks, "unique_chunks": unique_chunks,
            "unique_bytes": unique_bytes, "stored_bytes": None, "job": None, "worker": None,
            "lease_until": None, "attempts": 0, "error": None, "updated": now()}


def _note_key(note: dict, blob: str) -> tuple:
    return (STATE_RANK.get(note.get("status"), -1), str(note.get("updated", "")), blob)


def parse_note(raw: bytes | None) -> dict | None:
    """A note, or None when it is not one git-panini could have written (quarantined: never merged
    in, skipped by readers): bad JSON, an unknown status, a field of the wrong type."""
    if raw is None or len(raw) > MAX_NOTE_SIZE:
        return None
    try:
        note = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(note, dict) or note.get("status") not in STATE_RANK:
        return None
    for key, kind in _FIELDS.items():
        value = note.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return None
        if kind is int and value is not None and not 0 <= value < MAX_COUNT:
            return None
    codecs = note.get("codecs") or {}
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_COUNT for v in codecs.values()):
        return None
    if not all(_plausible_time(note.get(key)) for key in ("updated", "lease_until")):
        return None
    return note


MAX_COUNT = 1 << 63    # no size or count git-panini writes comes near it: a larger one is not ours


def _plausible_time(value) -> bool:
    """None, or a time as now() writes it between 2000 and 2999 (readers draw and compare them)."""
    if value is None:
        return True
    try:
        return 2000 <= datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").year <= 2999
    except ValueError:
        return bool(re.fullmatch(r"2\d{3}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value))



def is_fanout(entry: TreeEntry, top: bool) -> bool:
    """A fanout folder of a notes tree as Notes.all() walks it: two hex digits, at the top only."""
    return entry.is_tree and top and _FAN.fullmatch(entry.name) is not None


def is_note(entry: TreeEntry, prefix_len: int, hex_len: int) -> bool:
    """A note as Notes.all() reads it: a blob whose name, after its fanout prefix, completes an object id."""
    return not entry.is_tree and prefix_len + len(entry.name) == hex_len and _HEX.fullmatch(entry.name) is not None

class Notes(HistoryRef):
    ref = NOTES_REF

    def path(self, manifest: str) -> str:
        # The same 2-character fanout `git notes` uses, so `git notes --ref panini show` works.
        return f"{manifest[:2]}/{manifest[2:]}"

    def get(self, manifest: str) -> dict | None:
        tree = self.tree_of(self.tip())
        if tree is None:
            return None
        editor = TreeEditor(self.repo, tree)
        entry = editor.get(self.path(manifest)) or editor.get(manifest)
        return self.load(entry.oid) if entry else None

    def load(self, blob: str) -> dict | None:
        try:
            return parse_note(self.repo.read_kind(blob, "blob", MAX_NOTE_SIZE))
        except ObjectTooLarge:
            return None

    def all(self, commit: str | None = None) -> dict[str, dict]:
        """Every valid note of our tip, or of another notes commit (a remote's, as fetched)."""
        tree = self.tree_of(commit or self.tip())
        out: dict[str, dict] = {}
        if tree is not None:
            self._walk(tree, "", out)
        return out

    def _walk(self, tree: str, prefix: str, out: dict):
        for e in self.repo.read_tree(tree):
            if is_fanout(e, top=not prefix):
                self._walk(e.oid, e.name, out)
            elif is_note(e, len(prefix), self.repo.hex_len):
                note = self.load(e.oid)
                if note is not None:
                    out[prefix + e.name] = note

    @staticmethod
    def encode(note: dict) -> bytes:
        return json.dumps(note, sort_keys=True).encode() + b"\n"

    def put(self, notes: dict[str, dict], message: str, only_if_absent: bool = False) -> str | None:
        """Write several notes in one commit (only_if_absent: never overwrite an existing note)."""
        encoded = [self.encode(n) for n in notes.values()]
        blobs = dict(zip(notes, self.repo.write_blobs(encoded)))

        def apply(editor: TreeEditor):
            for manifest, blob in blobs.items():
                path = self.path(manifest)
                if only_if_absent and editor.get(path) is not None:
                    continue
                editor.set(path, blob)

        return self.edit(apply, message)

    def transition(self, manifests: list[str], change, message: str) -> dict[str, dict]:
        """Atomically rewrite notes: change(manifest, current note or None) returns the new note or None
        (leave it). Runs again on the new tip if another writer got in first; returns what was written."""
        written: dict[str, dict] = {}
        self.edit(lambda editor: self._apply(editor, manifests, change, written), message)
        return dict(written)

    def rewrite(self, base: str | None, manifests: list[str], change, message: str) -> tuple[str | None, dict[str, dict]]:
        """transition() on notes commit `base` (a remote's tip as fetched) instead of our ref, which is
        left alone: (a child commit of base, or None if nothing changed; {manifest: note written})."""
        written: dict[str, dict] = {}
        editor = TreeEditor(self.repo, self.tree_of(base))
        self._apply(editor, manifests, change, written)
        if not written:
            return None, written
        return self._commit(editor.write(), [base] if base else [], message), written

    def _apply(self, editor: TreeEditor, manifests: list[str], change, written: dict[str, dict]):
        written.clear()
        for manifest in manifests:
            entry = editor.get(self.path(manifest))
            current = self.load(entry.oid) if entry else None
            new = change(manifest, current)
            if new is not None:
                new = dict(new, updated=now())
                blob = self.repo.write_object("blob", self.encode(new))
                editor.set(self.path(manifest), blob)
                written[manifest] = new

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        """Ours plus their valid notes: per note the higher state wins (ties: the later update);
        a note that does not parse as one is never taken in."""
        editor = TreeEditor(self.repo, ours)
        if theirs is None or theirs == ours:
            return editor.write() if ours else None
        ours_root = {e.name: e for e in self.repo.read_tree(ours)} if ours else {}
        for top in self.repo.read_tree(theirs):
            if not top.is_tree or not _FAN.fullmatch(top.name):
                continue
            if top.name in ours_root and ours_root[top.name].oid == top.oid:
                continue
            try:
                entries = self.repo.read_tree(top.oid)
            except ObjectTooLarge:
                continue   # no writer makes such a tree: quarantined
            for e in entries:
                if e.mode != MODE_BLOB or len(e.name) != self.repo.hex_len - 2 or not _HEX.fullmatch(e.name):
                    continue
                path = f"{top.name}/{e.name}"
                mine = editor.get(path)
                if mine is not None and mine.oid == e.oid:
                    continue
                their_note = self.load(e.oid)
                if their_note is None:
                    continue
                my_note = self.load(mine.oid) if mine else None
                if my_note is None or _note_key(their_note, e.oid) > _note_key(my_note, mine.oid):
                    editor.set(path, e.oid)
        return editor.write()
