"""Retention: closed partitions older than the cutoff go to verified files, then are dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from attrs import field, frozen
from dedup.application.ports import Archiver, PartitionStore, Progress
from dedup.application.progress import NoProgress, counted
from dedup.domain.archive import (
    ArchiveAction,
    ArchivedTable,
    ArchiveError,
    ArchiveManifest,
    ArchiveStep,
    Partition,
    Tally,
    midnight,
)


def archive_cutoff(now: datetime, older_than: timedelta) -> datetime:
    """Partitions ending at or before this moment may go; never today's (UTC), still open."""
    return min(midnight(now.astimezone(UTC).date()), now - older_than)


@frozen
class ArchiveEvents:
    """Move every closed day partition older than the retention into a verified file, then drop it.

    Each step leaves every row in ClickHouse or in a verified file, so a run that died at any
    point is finished by the next one: a verified file with the partition's exact tally is
    reused (drop only), any other file is kept and a new one is written beside it.
    """

    store: PartitionStore
    archiver: Archiver
    clock: Callable[[], datetime]
    retention: timedelta
    progress: Progress = field(factory=NoProgress)
    tables: tuple[ArchivedTable, ...] = (ArchivedTable.EVENTS, ArchivedTable.DUPLICATES)

    def execute(
        self, *, older_than: timedelta | None = None, dry_run: bool = False
    ) -> list[ArchiveStep]:
        """What was done to each partition, or with dry_run what would be done (nothing changes)."""
        cutoff = archive_cutoff(self.clock(), self.retention if older_than is None else older_than)
        steps: list[ArchiveStep] = []
        for table in self.tables:
            for partition in self.store.partitions(table):
                if partition.closed_before(cutoff):
                    steps.append(self._plan(partition) if dry_run else self._archive(partition))
        return steps

    def _plan(self, partition: Partition) -> ArchiveStep:
        tally = self.store.tally(partition)
        if tally.rows == 0:
            step = ArchiveStep(partition, ArchiveAction.DROP, 0)
        else:
            same = [m for m in self.archiver.archived(partition) if m.tally == tally]
            step = (
                ArchiveStep(partition, ArchiveAction.DROP_ARCHIVED, tally.rows, same[0].file)
                if same
                else ArchiveStep(partition, ArchiveAction.EXPORT_AND_DROP, tally.rows)
            )
        self.progress.note(f"would {step.action.value}: {partition} ({step.rows} rows)")
        return step

    def _archive(self, partition: Partition) -> ArchiveStep:
        tally = self.store.tally(partition)
        if tally.rows == 0:  # parts without a visible row: nothing to keep
            self.store.drop(partition)
            return ArchiveStep(partition, ArchiveAction.DROP, 0)
        manifest = self._verified_file(partition, tally)
        action = ArchiveAction.DROP_ARCHIVED
        if manifest is None:
            manifest = self._export(partition, tally)
            action = ArchiveAction.EXPORT_AND_DROP
            if manifest.tally != tally:
                return self._keep(partition, tally, manifest, "rows changed while exporting")
        # Rows may have arrived (a restore) since the tally: then the file misses them.
        if self.store.tally(partition) != tally:
            return self._keep(partition, tally, manifest, "rows arrived before the drop")
        self.store.drop(partition)
        self.progress.note(f"dropped {partition}: {tally.rows} rows in {manifest.file}")
        return ArchiveStep(partition, action, tally.rows, manifest.file)

    def _verified_file(self, partition: Partition, tally: Tally) -> ArchiveManifest | None:
        """A file already holding exactly these rows (a run died before its drop), verified."""
        for candidate in self.archiver.archived(partition):
            if candidate.tally == tally:
                try:
                    return self.archiver.verify(candidate.file)
                except ArchiveError as exc:
                    self.progress.note(f"not reusing {candidate.file}: {exc}")
        return None

    def _export(self, partition: Partition, tally: Tally) -> ArchiveManifest:
        self.progress.begin(f"export {partition}", tally.rows)
        written = self.archiver.write(
            partition, counted(self.store.records(partition), self.progress)
        )
        # Read back what landed on disk rather than trusting what was meant to be written.
        return self.archiver.verify(written.file)

    def _keep(
        self, partition: Partition, tally: Tally, manifest: ArchiveManifest, why: str
    ) -> ArchiveStep:
        self.progress.note(f"kept {partition}: {why}; the next run archives it again")
        return ArchiveStep(partition, ArchiveAction.KEEP_CHANGED, tally.rows, manifest.file)
