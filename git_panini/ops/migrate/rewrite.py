"""`migrate import|export` from start to end: checks, backup, the stream into a staging repository, the refs'
transaction, and the working tree checked out again."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from .attributes import PatternMatcher, check_patterns, tracked_patterns
from .blobs import PACK_WINDOWS, BlobReader
from .conversions import ExportConversion, ImportConversion
from .errors import MigrateError
from .lfs import lfs_patterns
from .refs import backup, drop_backup, move_refs, refuse_other_worktrees, require_clean, resolve_refs, staging_repo
from .stream import Counts, HistoryRewriter


@dataclass
class MigrateResult:
    """What a rewrite did: the refs it read, those it moved, where their old tips are kept."""
    refs: list[str]
    changed: list[str]
    backup: str | None
    counts: Counts
    checked_out: bool
    patterns: list[str]          # the include patterns, defaults filled in
    lfs_fetched: bool = False    # git-lfs objects missing here were fetched (git lfs fetch --all)


def migrate(repo, mode: str, include: list[str], exclude: list[str], refs: list[str], everything: bool,
            progress=None, from_lfs: bool = False) -> MigrateResult:
    """Rewrite the refs' history (mode 'import' or 'export'); progress(total_commits) -> a per-commit callback.
    Import with no include pattern takes the ones HEAD tracks with git-panini and every one git-lfs tracks in
    the history; from_lfs adds git-lfs's to those given."""
    check_patterns(include + exclude)
    names = resolve_refs(repo, refs, everything)
    if mode == "import":
        lfs = lfs_patterns(repo, names) if from_lfs or not include else []
        if from_lfs and not lfs:
            raise MigrateError("--from-lfs: no .gitattributes in this history tracks files with git-lfs", usage=True)
        include = list(dict.fromkeys((include or tracked_patterns(repo)) + lfs))
        if not include:
            raise MigrateError("give --include PATTERN (e.g. --include '*.psd'), or track patterns first", usage=True)
        if not repo.config_get("filter.panini.process"):
            raise MigrateError("the panini filter is not installed here (run: git panini install)")
    require_clean(repo)
    refuse_other_worktrees(repo, names)
    total = int(repo.git("rev-list", "--count", *names, "--").stdout.decode().strip() or 0)
    on_commit = progress(total) if progress else (lambda: None)
    prefix, tips = backup(repo, names)
    staging = staging_repo(repo, prefix)
    blobs = BlobReader(repo)
    matcher = PatternMatcher(repo, include, exclude) if include or exclude else None
    conversion = (ImportConversion if mode == "import" else ExportConversion)(repo, blobs, include, exclude)
    changed = []
    try:
        counts = HistoryRewriter(repo, conversion, matcher, blobs, on_commit).run(names, staging)
        # Nothing converted: only .gitattributes lines would change, which is not worth new commit ids.
        if counts.converted:
            changed = move_refs(repo, staging, tips)
    finally:
        if not changed:
            drop_backup(repo, prefix, tips)
        blobs.close()
        if matcher is not None:
            matcher.close()
        shutil.rmtree(staging, ignore_errors=True)
    head = repo.git("symbolic-ref", "-q", "HEAD", check=False).stdout.decode().strip()
    checked_out = repo.work_tree is not None and head in changed
    if checked_out:
        # The tree was clean: the new HEAD's files are the same bytes, now through (or out of) the filter.
        repo.git(*PACK_WINDOWS, "reset", "--hard", "-q")
    return MigrateResult(names, changed, prefix if changed else None, counts, checked_out, include,
                         mode == "import" and conversion.lfs_objects.fetched)
