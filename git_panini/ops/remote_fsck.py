"""`git panini fsck --remote`: is every file the remote's branches and tags reference readable from the
remote's own objects?

Each chunk is judged by what proves it (DESIGN.md §4), never by the remote's metadata: raw in a bulk ref
whose list recomputes to the ref's commit, or through a pack whose every blob such a ref holds. Through a
pack it is "verified" once this side decoded that pack and re-hashed its chunks (the verdict is kept by
pack id; `--decode` fetches and decodes the rest), "claimed" while only a recipe says so. A file with a
chunk that is neither, or whose manifest the remote's store does not list, is "missing": the remote lost
it (a ref deleted or rewound), and `git panini push --repair` from a clone that still holds it puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..format import manifest as manifest_mod
from ..format import pointer_scan as pointers
from ..git.repo import ObjectTooLarge
from ..git.tree_edit import TreeEditor
from ..store.chunk_index import ChunkIndex
from ..store.chunk_source import ChunkSource
from ..store.shared import Store, manifest_path, pack_path
from ..transfer.remote import remote_objects
from ..transfer.sync import drop_private, fetch, learn_holdings, private_prefix

VERDICTS = ("verified", "claimed", "missing")


@dataclass
class RemoteFile:
    path: str
    manifest: str
    verdict: str = "verified"
    chunks: int = 0
    missing: int = 0
    claimed: int = 0
    reason: str | None = None


@dataclass
class RemoteReport:
    remote: str
    files: list[RemoteFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(f.verdict == verdict for f in self.files)


def branch_and_tag_pointers(repo, remote: str) -> list[pointers.FoundPointer]:
    """Every pointer in the history of the remote's branches and tags, as the remote has them now."""
    prefix = private_prefix()
    try:
        repo.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", remote,
                 f"+refs/heads/*:{prefix}heads/*", f"+refs/tags/*:{prefix}tags/*")
        refs = repo.git("for-each-ref", "--format=%(refname)", prefix).stdout.decode().split()
        return pointers.in_revs(repo, refs) if refs else []
    finally:
        drop_private(repo, prefix)


def check_remote(repo, remote: str, decode: bool = False) -> RemoteReport:
    state = fetch(repo, remote)
    learn_holdings(repo, state)
    report = RemoteReport(remote)
    if state.damaged:
        report.warnings.append(f"the remote lost data since this clone last saw it: {', '.join(state.damaged)}")
    listed = TreeEditor(repo, state.base_tree) if state.base_tree else None
    index = ChunkIndex(Store(repo))
    source = ChunkSource(repo, fetcher=remote_objects(repo, remote)) if decode else None
    verdicts: dict[str, RemoteFile] = {}
    try:
        index.refresh()
        held = {}   # pack -> a reader of the remote finds it: its recipe listed there, every blob held there

        def pack_held(pack: str) -> bool:
            if pack not in held:
                held[pack] = (listed is not None and listed.get(pack_path(pack)) is not None
                              and all(index.remote_holds_blob(remote, b) for b in index.pack_blobs(pack)))
            return held[pack]

        held_blobs = index.remote_blobs(remote)
        for found in branch_and_tag_pointers(repo, remote):
            if found.pointer is None:
                report.warnings.append(f"{found.path}: malformed pointer ({found.error})")
                continue
            manifest = found.pointer.manifest
            if manifest not in verdicts:
                verdicts[manifest] = _judge(repo, index, source, listed, found.path, manifest, pack_held, held_blobs)
            report.files.append(RemoteFile(**{**verdicts[manifest].__dict__, "path": found.path}))
    finally:
        if source is not None:
            source.close()
        index.close()
    return report


def _judge(repo, index: ChunkIndex, source: ChunkSource | None, listed, path: str, manifest: str, pack_held,
           held_blobs: set[str]) -> RemoteFile:
    result = RemoteFile(path, manifest)
    if listed is None or listed.get(manifest_path(manifest)) is None:
        result.verdict, result.reason = "missing", "the remote's store does not list its manifest"
        return result
    try:
        data = repo.read_kind(manifest, "blob", manifest_mod.MAX_MANIFEST_SIZE)
        chunks = manifest_mod.parse(data, repo.hex_len) if data is not None else None
    except (manifest_mod.ManifestError, ObjectTooLarge) as e:
        result.verdict, result.reason = "missing", f"its manifest is unreadable ({e})"
        return result
    if chunks is None:
        result.verdict, result.reason = "missing", "its manifest is not on the remote"
        return result
    first_missing = None
    for chunk in chunks.chunks:   # each distinct chunk once
        result.chunks += 1
        if chunk in held_blobs:
            continue
        packs = [p for p, _, _, _ in index.locate(chunk) if pack_held(p)]
        if any(index.is_verified(p) for p in packs):
            continue
        if packs and source is not None and source.verify_packed(chunk, pack_held):
            continue
        if packs and source is None:
            result.claimed += 1
        else:
            result.missing += 1
            first_missing = first_missing or chunk
    if result.missing:
        result.verdict = "missing"
        result.reason = (f"{result.missing} of {result.chunks} chunk(s) neither held raw by a ref of the remote nor "
                         f"yielded by a pack there that decodes to them (first {first_missing})")
    elif result.claimed:
        result.verdict = "claimed"
        result.reason = f"{result.claimed} chunk(s) rest on packs not decoded here (--decode checks them)"
    return result
