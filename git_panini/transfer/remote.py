"""A remote's store and notes exactly as one fetch saw them (what a push builds on), and sync errors."""

from __future__ import annotations

from dataclasses import dataclass, field


class SyncError(Exception):
    pass


@dataclass
class RemoteState:
    remote: str
    store: str | None = None          # its store tip (a format-2 chain)
    notes: str | None = None          # its notes tip
    base_tree: str | None = None      # the store tree the next push adds to
    replace: str | None = None        # its format-1 store tip, replaced (with a lease) by the next push
    bulk: dict[str, str] = field(default_factory=dict)   # refs that replacing it must push too
