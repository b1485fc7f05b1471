"""`git panini migrate`: rewrite history so matching files become pointers (import) or plain blobs again (export).

The history streams through `git fast-export --no-data | <this> | git fast-import`: commits pass
through one at a time, unchanged files keep their blob ids, and each distinct blob that a pattern
selects is converted once (blob id -> new blob, cached). Import cleans the bytes exactly as `git add`
does (IngestSession: chunks into packs, one refs/panini/local commit); export reads them back through
reader.iter_file, verified. The top-level .gitattributes of every rewritten commit gains (import) or
loses (export) the patterns' lines; a nested one that sets a filter (git-lfs's `dir/.gitattributes`) gets
the same lines, made relative to its folder, at its end, so they win there too.

git fast-import writes into a staging repository that borrows this one's objects; only once the whole
stream has gone through do its packs move in and the refs move, in one compare-and-swap transaction
against the tips read at the start: a failure, or a commit made meanwhile (here or in another worktree),
leaves every ref as it was. The old tips stay under refs/panini-migrate/<time>/.

Modules: errors (MigrateError), attributes (the patterns as .gitattributes lines and as git matches them),
blobs (reading the history's blobs), lfs (git-lfs pointers, patterns and objects), conversions (import and export of one blob or
.gitattributes), stream (fast-export -> conversion -> fast-import), refs (which refs, their backup, the staging
repository, the transaction), rewrite (`migrate()`, start to end), survey (`info`).
"""

from .errors import MigrateError
from .rewrite import migrate
from .survey import info

__all__ = ["MigrateError", "info", "migrate"]
