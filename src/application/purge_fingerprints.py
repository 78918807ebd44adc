"""The dedup window: fingerprint partitions wholly older than it are dropped (no file needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from attrs import field, frozen
from dedup.application.ports import PartitionStore, Progress
from dedup.application.progress import NoProgress
from dedup.domain.archive import ArchiveAction, ArchivedTable, ArchiveStep


@frozen
class PurgeFingerprints:
    """Drop each event_fingerprints partition whose every moment is older than the window.

    Fingerprints are derived from events (and refilled by a restore), so dropping them loses
    no row; it only ends dedup for events older than the window.
    """

    store: PartitionStore
    clock: Callable[[], datetime]
    window: timedelta
    progress: Progress = field(factory=NoProgress)

    def execute(self, *, dry_run: bool = False) -> list[ArchiveStep]:
        cutoff = self.clock() - self.window
        steps: list[ArchiveStep] = []
        for partition in self.store.partitions(ArchivedTable.FINGERPRINTS):
            if not partition.closed_before(cutoff):
                continue
            rows = self.store.tally(partition).rows
            if dry_run:
                self.progress.note(f"would drop {partition} ({rows} rows, outside the window)")
            else:
                self.store.drop(partition)
                self.progress.note(f"dropped {partition} ({rows} rows, outside the window)")
            steps.append(ArchiveStep(partition, ArchiveAction.DROP, rows))
        return steps
