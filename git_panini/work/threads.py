"""How many encoding threads each of a machine's worker jobs gets (cores and memory shared out)."""

from __future__ import annotations

import os

THREAD_MEMORY = 1 << 30    # a segment in flight at effort 2: its bytes, the expanded copy, a 256 MiB PPMd model


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Every usable core busy across the jobs, none oversubscribed, and no more threads than memory holds."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        memory = 0
    by_memory = memory // (jobs * THREAD_MEMORY) if memory > 0 else 1 << 30
    return max(1, min(usable_cores() // jobs, by_memory))
