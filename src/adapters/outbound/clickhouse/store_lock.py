"""The embedded store's lock: one process writes a chDB store, however many executors it has.

chDB would open a store another process is writing to, and both would then keep their own
idea of its parts; an archive run dropping partitions under a serving process would corrupt
it. Within a process chDB shares one engine among all sessions on its path, so every
executor there shares the one lock too.

No library adds anything here: the cross-process part is our FileLock (flock, freed when
the process dies), and what remains is a count of holders per path. filelock's singleton
locks count too, but per thread unless told otherwise, while an executor is opened on the
queue thread and closed on another; a second lock dependency would buy a dozen lines.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from attrs import define, field
from dedup.adapters.outbound.clickhouse.executor import BACKEND
from dedup.adapters.outbound.file_lock import FileLock
from dedup.domain.errors import BackendUnavailableError


@define
class StoreLocks:
    """The held store locks of this process, each with how many executors hold it."""

    _guard: threading.Lock = field(factory=threading.Lock, init=False)
    _held: dict[str, tuple[FileLock, int]] = field(factory=dict, init=False)

    def acquire(self, path: str) -> None:
        """Hold the store at `path`, or raise BackendUnavailableError if another process does."""
        key = os.path.realpath(path)
        with self._guard:
            lock, count = self._held.get(key, (FileLock(Path(key) / ".dedup.lock"), 0))
            if count == 0 and not lock.acquire():
                raise BackendUnavailableError(
                    BACKEND,
                    f"the embedded store {key} is in use by another process"
                    " (stop `dedup serve` first, or use a ClickHouse server)",
                )
            self._held[key] = (lock, count + 1)

    def release(self, path: str) -> None:
        """Let go of one hold; the last one frees the store for other processes."""
        key = os.path.realpath(path)
        with self._guard:
            lock, count = self._held.pop(key, (None, 0))
            if lock is not None and count > 1:
                self._held[key] = (lock, count - 1)
            elif lock is not None:
                lock.release()


# Process-wide, as chDB's engine is: every executor on a path counts against one lock.
STORE_LOCKS = StoreLocks()
