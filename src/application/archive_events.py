"""Retention: closed partitions older than the cutoff go to verified files, then are dropped."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from attrs import field, frozen
from dedup.application.ports import Archiver, LateJournal, PartitionStore, Progress
from dedup.application.progress import NoProgress, counted
from dedup.domain.archive import (
    LATE_MARGIN,
    ArchiveAction,
    ArchivedTable,
    ArchiveError,
    ArchiveManifest,
    ArchiveStep,
    Partition,
    Record,
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

    A late row (journaled by the worker, domain.archive.written_late) whose insert raced a
    drop is in neither the table nor a file afterwards: the run stores it again, for the next
    run to archive. docs/operations.md, "Late events and the archive", argues it.
    """

    store: PartitionStore
    archiver: Archiver
    late: LateJournal
    clock: Callable[[], datetime]
    retention: timedelta
    progress: Progress = field(factory=NoProgress)
    tables: tuple[ArchivedTable, ...] = (ArchivedTable.EVENTS, ArchivedTable.DUPLICATES)
    # Held between a verified file and its drop (DEDUP_ARCHIVE_DROP_DELAY): drills and tests
    # widen the window a late insert can race; 0 in production.
    drop_delay: timedelta = timedelta(0)
    sleep: Callable[[float], None] = time.sleep

    def execute(
        self, *, older_than: timedelta | None = None, dry_run: bool = False
    ) -> list[ArchiveStep]:
        """What was done to each partition, or with dry_run what would be done (nothing changes)."""
        started = self.clock()
        cutoff = archive_cutoff(started, self.retention if older_than is None else older_than)
        steps: list[ArchiveStep] = []
        for table in self.tables:
            for partition in self.store.partitions(table):
                if partition.closed_before(cutoff):
                    steps.append(self._plan(partition) if dry_run else self._archive(partition))
        if not dry_run:
            # Every closed day, not only this run's: an earlier run (another cutoff) may have
            # died between its drop and this step.
            steps.extend(self._put_back_late(before=midnight(self.clock().astimezone(UTC).date())))
            # A row journaled before this run began was stored before it (LATE_MARGIN), so it
            # is in its table or in a file now: its journal is no longer needed.
            self.late.forget_late(written_before=started - LATE_MARGIN)
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
        if self.drop_delay > timedelta(0):
            self.sleep(self.drop_delay.total_seconds())
        # A late row stored from here to the drop is lost to the table: _put_back_late.
        self.store.drop(partition)
        self.progress.note(f"dropped {partition}: {tally.rows} rows in {manifest.file}")
        self._set_aside_copies(partition, manifest)
        return ArchiveStep(partition, action, tally.rows, manifest.file)

    def _put_back_late(self, *, before: datetime) -> list[ArchiveStep]:
        """Store again each journaled row of a closed day found in neither its table nor a file."""
        steps: list[ArchiveStep] = []
        for table in self.tables:
            by_day: defaultdict[date, list[Record]] = defaultdict(list)
            for record in self.late.unstored_late(table, before=before):
                by_day[record.received_at.astimezone(UTC).date()].append(record)
            for day, records in sorted(by_day.items()):
                partition = Partition(table=table, start=day)
                archived = self._archived_ids(partition)
                lost = [r for r in records if r.event_id not in archived]
                if lost:
                    stored = self.late.put_back(lost)
                    self.progress.note(f"put back {stored} late rows of {partition}")
                    steps.append(ArchiveStep(partition, ArchiveAction.PUT_BACK_LATE, stored))
        return steps

    def _archived_ids(self, partition: Partition) -> set[object]:
        """The ids in the verified files of a partition (an unverified file counts for none)."""
        ids: set[object] = set()
        for manifest in self.archiver.archived(partition):
            try:
                self.archiver.verify(manifest.file)
            except ArchiveError as exc:
                self.progress.note(f"not counting {manifest.file}: {exc}")
                continue
            ids.update(record.event_id for record in self.archiver.read(manifest.file))
        return ids

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

    def _set_aside_copies(self, partition: Partition, kept: ArchiveManifest) -> None:
        """Set aside the older files of a partition whose rows the file just dropped for holds
        (a run that died before its drop, or kept the partition): no row is in two archives."""
        held: set[object] | None = None
        for other in self.archiver.archived(partition):
            if other.file == kept.file:
                continue
            if held is None:
                held = {record.event_id for record in self.archiver.read(kept.file)}
            try:
                self.archiver.verify(other.file)
                ids = {record.event_id for record in self.archiver.read(other.file)}
            except ArchiveError:
                continue  # it vouches for nothing, and stays for an operator to look at
            if ids <= held:
                self.archiver.set_aside(other.file)
                self.progress.note(f"set aside {other.file}: {kept.file} holds its rows")

    def _keep(
        self, partition: Partition, tally: Tally, manifest: ArchiveManifest, why: str
    ) -> ArchiveStep:
        # Nothing was dropped, so every row of the file is still in the table: the file is no
        # archive of anything, and must not count as one beside the next run's.
        self.archiver.set_aside(manifest.file)
        self.progress.note(f"kept {partition}: {why}; the next run archives it again")
        return ArchiveStep(partition, ArchiveAction.KEEP_CHANGED, tally.rows, manifest.file)
