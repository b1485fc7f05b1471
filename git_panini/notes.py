"""Status notes: refs/notes/panini, one JSON note per manifest, which double as the work queue."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from .objects import TreeEntry
from .refchain import RefChain
from .treeedit import TreeEditor, union_trees

NOTES_REF = "refs/notes/panini"
# Merge order: a higher rank wins; ties go to the later `updated`.
STATE_RANK = {"pending": 0, "queued": 1, "processing": 2, "failed": 3, "completed": 4}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_note(raw_bytes: int, chunks: int, unique_chunks: int, unique_bytes: int) -> dict:
    return {"status": "pending", "bytes": raw_bytes, "chunks": chunks, "unique_chunks": unique_chunks,
            "unique_bytes": unique_bytes, "stored_bytes": None, "job": None, "worker": None,
            "lease_until": None, "attempts": 0, "error": None, "updated": now()}


def _note_key(note: dict, raw: bytes) -> tuple:
    return (STATE_RANK.get(note.get("status"), -1), str(note.get("updated", "")), raw)


def _parse(raw: bytes) -> dict:
    try:
        note = json.loads(raw)
        return note if isinstance(note, dict) else {}
    except ValueError:
        return {}


class Notes(RefChain):
    ref = NOTES_REF

    def _path(self, manifest: str) -> str:
        # The same 2-character fanout `git notes` uses, so `git notes --ref panini show` works.
        return f"{manifest[:2]}/{manifest[2:]}"

    def get(self, manifest: str) -> dict | None:
        tree = self.tree_of(self.tip())
        if tree is None:
            return None
        editor = TreeEditor(self.repo, tree)
        entry = editor.get(self._path(manifest)) or editor.get(manifest)
        return _parse(self.repo.read_kind(entry.oid, "blob") or b"") if entry else None

    def all(self) -> dict[str, dict]:
        tree = self.tree_of(self.tip())
        out: dict[str, dict] = {}
        if tree is not None:
            self._walk(tree, "", out)
        return out

    def _walk(self, tree: str, prefix: str, out: dict):
        for e in self.repo.read_tree(tree):
            if e.is_tree:
                self._walk(e.oid, prefix + e.name, out)
            else:
                out[prefix + e.name] = _parse(self.repo.read_kind(e.oid, "blob") or b"")

    def put(self, notes: dict[str, dict], message: str, only_if_absent: bool = False) -> str | None:
        """Write several notes in one commit (only_if_absent: never overwrite an existing note)."""
        encoded = [json.dumps(n, sort_keys=True).encode() + b"\n" for n in notes.values()]
        blobs = dict(zip(notes, self.repo.write_blobs(encoded)))

        def apply(editor: TreeEditor):
            for manifest, blob in blobs.items():
                path = self._path(manifest)
                if only_if_absent and editor.get(path) is not None:
                    continue
                editor.set(path, blob)

        return self.edit(apply, message)

    def transition(self, manifests: list[str], change, message: str) -> dict[str, dict]:
        """Atomically rewrite notes: change(manifest, current note or None) returns the new note or None
        (leave it). Runs again on the new tip if another writer got in first; returns what was written."""
        written: dict[str, dict] = {}

        def apply(editor: TreeEditor):
            written.clear()
            for manifest in manifests:
                entry = editor.get(self._path(manifest))
                current = _parse(self.repo.read_kind(entry.oid, "blob") or b"") if entry else None
                new = change(manifest, current)
                if new is not None:
                    new = dict(new, updated=now())
                    blob = self.repo.write_object("blob", json.dumps(new, sort_keys=True).encode() + b"\n")
                    editor.set(self._path(manifest), blob)
                    written[manifest] = new

        self.edit(apply, message)
        return dict(written)

    def merge_trees(self, ours: str | None, theirs: str | None) -> str | None:
        return union_trees(self.repo, ours, theirs, resolve=self._resolve)

    def _resolve(self, path: str, a: TreeEntry, b: TreeEntry) -> TreeEntry:
        raw_a = self.repo.read_kind(a.oid, "blob") or b""
        raw_b = self.repo.read_kind(b.oid, "blob") or b""
        return max((a, raw_a), (b, raw_b), key=lambda p: _note_key(_parse(p[1]), p[1]))[0]
