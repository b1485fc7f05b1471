"""A whole-file sha256 computed on a second thread, beside chunking (hashlib releases the GIL)."""

from __future__ import annotations

import hashlib
import queue
import threading


class BackgroundSha256:
    """update() hands blocks over (they must not be mutated afterwards); hexdigest() waits for the end."""

    def __init__(self, depth: int = 16):
        self._queue: queue.Queue = queue.Queue(depth)   # bounds the memory held in flight
        self._digest = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while (block := self._queue.get()) is not None:
            self._digest.update(block)

    def update(self, block):
        if block:
            self._queue.put(block)

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return self._digest.hexdigest()
