"""One retention run under a lock: archive events and duplicates, then purge fingerprints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from attrs import frozen
from dedup.application.archive_events import ArchiveEvents
from dedup.application.ports import Lock
from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.domain.archive import ArchiveStep


@contextmanager
def exclusively(lock: Lock) -> Iterator[bool]:
    """Hold the lock for the block if it is free; the block learns whether it got it."""
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


@frozen
class RetentionReport:
    archived: tuple[ArchiveStep, ...]
    purged: tuple[ArchiveStep, ...]


@frozen
class RunRetention:
    """Archive then purge, one run at a time; the scheduled task and the command share it."""

    archive: ArchiveEvents
    purge: PurgeFingerprints
    lock: Lock

    def execute(
        self, *, older_than: timedelta | None = None, dry_run: bool = False
    ) -> RetentionReport | None:
        """What was done (or would be, with dry_run); None when another run holds the lock."""
        if dry_run:  # changes nothing, so it needs no lock and may run beside a real run
            return self._run(older_than=older_than, dry_run=True)
        with exclusively(self.lock) as acquired:
            return self._run(older_than=older_than, dry_run=False) if acquired else None

    def _run(self, *, older_than: timedelta | None, dry_run: bool) -> RetentionReport:
        archived = self.archive.execute(older_than=older_than, dry_run=dry_run)
        purged = self.purge.execute(dry_run=dry_run)
        return RetentionReport(archived=tuple(archived), purged=tuple(purged))
