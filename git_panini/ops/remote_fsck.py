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
from ..transfer.sync import drop_private, fetch, learn_holdings, private_prefix, survey
from .fsck import check_remote_refs

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
    errors: list[str] = field(default_factory=list)     # its store or notes ref unusable: no file judged
    warnings: list[str] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(f.verdict == verdict for f in self.files)


def branch_and_tag_pointers(repo, index: ChunkIndex, remote: str, tips: list[str]):
    """[(path, blob, manifest, error)] of every pointer in the history of the remote's branches and tags
    (`tips`, here): only the history new since the last check is read when it holds that check's tips,
    all of it otherwise (a branch deleted or rewound there)."""
    tips = sorted(set(tips))
    old, known = index.scanned(remote)
    if old == tips:
        return known
    kept = bool(old) and bool(tips) and repo.git("rev-list", "--count", *old, "--not", *tips, "--",
                                                 check=False).stdout.strip() == b"0"
    revs = [*tips, "--not", *old] if kept else tips
    found = [(f.path, f.blob, f.pointer.manifest if f.pointer else None, f.error)
             for f in (pointers.in_revs(repo, revs) if revs else [])]
    index.record_scan(remote, tips, found, replace=not kept)
    if not kept:
        return found
    seen = {blob for _, blob, _, _ in known}
    return known + [f for f in found if f[1] not in seen]


def check_remote(repo, remote: str, decode: bool = False) -> RemoteReport:
    report = RemoteReport(remote)
    prefix = private_prefix()
    try:
        seen = survey(repo, remote, prefix)
        report.errors, report.warnings = check_remote_refs(repo, remote, seen.tips)
        if report.errors:   # a ref that is not a commit: no file can be judged through it
            return report
        state = fetch(repo, remote, tips=seen.tips)
        learn_holdings(repo, state, seen.bulk)
        _check_files(repo, state, seen.branches, report, decode)
    finally:
        drop_private(repo, prefix)
    return report


def _check_files(repo, state, branches: dict[str, str], report: RemoteReport, decode: bool):
    remote = state.remote
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
        found = branch_and_tag_pointers(repo, index, remote, list(branches.values()))
        # Verdicts of files found whole there before stand while nothing they rested on went away.
        before = index.verified_files(remote, state.base_tree)
        known = index.manifest_chunks({m for _, _, m, _ in found if m and m not in before})
        read: dict[str, list[str]] = {}
        unknown = dict.fromkeys(m for _, _, m, _ in found if m and m not in before and m not in known)
        for manifest, data in repo.read_many(unknown, "blob", manifest_mod.MAX_MANIFEST_SIZE):
            try:
                read[manifest] = manifest_mod.parse(data, repo.hex_len).chunks
            except manifest_mod.ManifestError:
                pass   # _judge reads it again and says why
        for path, _, manifest, error in found:
            if manifest is None:
                report.warnings.append(f"{path}: malformed pointer ({error})")
                continue
            if manifest not in verdicts:
                if manifest in before:
                    verdicts[manifest] = RemoteFile(path, manifest, chunks=before[manifest])
                else:
                    chunks = known[manifest] if manifest in known else read.get(manifest)
                    verdicts[manifest] = _judge(repo, index, source, listed, path, manifest, chunks, read, pack_held,
                                                held_blobs)
            v = verdicts[manifest]
            report.files.append(RemoteFile(path, manifest, v.verdict, v.chunks, v.missing, v.claimed, v.reason))
        # A verified file's chunks are not needed again while its verdict stands (verified_files): kept for
        # the others only, and read again should the verdicts be forgotten.
        index.remember_manifests({m: c for m, c in read.items() if verdicts[m].verdict != "verified"})
        now = {m: v.chunks for m, v in verdicts.items() if v.verdict == "verified" and m not in before}
        if state.base_tree and (now or not before):
            index.add_verified_files(remote, state.base_tree, now)
    finally:
        if source is not None:
            source.close()
        index.close()


def _judge(repo, index: ChunkIndex, source: ChunkSource | None, listed, path: str, manifest: str,
           chunks: list[str] | None, read: dict[str, list[str]], pack_held, held_blobs: set[str]) -> RemoteFile:
    """The file's verdict by what the remote holds now; chunks: its manifest's, when a check read it before
    (a manifest read here is added to `read`)."""
    result = RemoteFile(path, manifest)
    if listed is None or listed.get(manifest_path(manifest)) is None:
        result.verdict, result.reason = "missing", "the remote's store does not list its manifest"
        return result
    if chunks is None:
        try:
            data = repo.read_kind(manifest, "blob", manifest_mod.MAX_MANIFEST_SIZE)
            parsed = manifest_mod.parse(data, repo.hex_len) if data is not None else None
        except (manifest_mod.ManifestError, ObjectTooLarge) as e:
            result.verdict, result.reason = "missing", f"its manifest is unreadable ({e})"
            return result
        if parsed is None:
            result.verdict, result.reason = "missing", "its manifest is not on the remote"
            return result
        chunks = read[manifest] = parsed.chunks
    first_missing = None
    for chunk in chunks:   # each distinct chunk once
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
