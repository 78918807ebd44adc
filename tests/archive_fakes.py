"""In-memory fakes for the archive ports: files in a dict, partitions as lists of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from attrs import Factory, define
from dedup.application.ports import (
    Archiver,
    LateJournal,
    Lock,
    PartitionStore,
    Progress,
    RestoreTarget,
)
from dedup.domain.archive import (
    ArchivedTable,
    ArchiveError,
    ArchiveManifest,
    Partition,
    Record,
    Tally,
)
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event


def _start(table: ArchivedTable, day: date) -> date:
    if table is ArchivedTable.FINGERPRINTS:  # toMonday
        return day - timedelta(days=day.weekday())
    return day


def _partition_of(table: ArchivedTable, record: Record) -> Partition:
    days = 7 if table is ArchivedTable.FINGERPRINTS else 1
    return Partition(table=table, start=_start(table, record.received_at.date()), days=days)


@define
class FakePartitionStore(PartitionStore, RestoreTarget, LateJournal):
    """Tables as lists; events added here also land in fingerprints, as the view does.

    `store_late` is a worker storing a row of a closed day: journal, then table; `before_drop`
    runs just before a drop, where a late insert races the archive run.
    """

    tables: dict[ArchivedTable, list[Record]] = Factory(
        lambda: {table: [] for table in ArchivedTable}
    )
    dropped: list[Partition] = Factory(list)
    fail_next_drop: bool = False
    down: bool = False
    journal: list[tuple[Record, datetime]] = Factory(list)
    before_drop: list[Callable[[], None]] = Factory(list)

    def store_late(self, record: Record, *, written_at: datetime) -> None:
        self.journal.append((record, written_at))
        self.add(record)

    def unstored_late(self, table: ArchivedTable, *, before: datetime) -> list[Record]:
        self._check()
        held = {r.event_id for r in self.tables[table]}
        found: dict[object, Record] = {}
        for record, _ in self.journal:
            of_table = isinstance(record, Event) == (table is ArchivedTable.EVENTS)
            if of_table and record.received_at < before and record.event_id not in held:
                found.setdefault(record.event_id, record)
        return list(found.values())

    def put_back(self, records: Sequence[Record]) -> int:
        return self.restore(records)

    def forget_late(self, *, written_before: datetime) -> None:
        self._check()
        self.journal = [(r, at) for r, at in self.journal if at >= written_before]

    def add(self, *records: Record) -> None:
        for record in records:
            table = ArchivedTable.EVENTS if isinstance(record, Event) else ArchivedTable.DUPLICATES
            self.tables[table].append(record)
            if table is ArchivedTable.EVENTS:
                self.tables[ArchivedTable.FINGERPRINTS].append(record)

    def rows(self, table: ArchivedTable) -> list[Record]:
        return list(self.tables[table])

    def partitions(self, table: ArchivedTable) -> list[Partition]:
        self._check()
        found = {_partition_of(table, record) for record in self.tables[table]}
        return sorted(found, key=lambda p: p.start)

    def tally(self, partition: Partition) -> Tally:
        self._check()
        return Tally.of(self._in(partition))

    def records(self, partition: Partition) -> Iterator[Record]:
        self._check()
        return iter(self._in(partition))

    def drop(self, partition: Partition) -> None:
        self._check()
        while self.before_drop:
            self.before_drop.pop(0)()
        if self.fail_next_drop:
            self.fail_next_drop = False
            raise BackendUnavailableError("clickhouse", "injected failure before the drop")
        rows = self.tables[partition.table]
        rows[:] = [r for r in rows if _partition_of(partition.table, r) != partition]
        self.dropped.append(partition)

    def restore(self, records: Sequence[Record]) -> int:
        self._check()
        fresh: list[Record] = []
        for record in records:
            table = ArchivedTable.EVENTS if isinstance(record, Event) else ArchivedTable.DUPLICATES
            stored = {r.event_id for r in self.tables[table]} | {r.event_id for r in fresh}
            if record.event_id not in stored:
                fresh.append(record)
        self.add(*fresh)
        return len(fresh)

    def _in(self, partition: Partition) -> list[Record]:
        return [
            r
            for r in self.tables[partition.table]
            if _partition_of(partition.table, r) == partition
        ]

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("clickhouse")


@define
class FakeArchiver(Archiver):
    """Files as manifests and row lists by path; `corrupt()` spoils one as a disk would."""

    files: dict[Path, tuple[ArchiveManifest, list[Record]]] = Factory(dict)
    aside: dict[Path, tuple[ArchiveManifest, list[Record]]] = Factory(dict)
    spoiled: set[Path] = Factory(set)

    def write(self, partition: Partition, records: Iterable[Record]) -> ArchiveManifest:
        rows = list(records)
        attempt = len(self.archived(partition)) + sum(
            1 for m, _ in self.aside.values() if m.partition == partition
        )
        suffix = f".{attempt}" if attempt else ""
        path = Path(f"{partition.table.value}-{partition.start.isoformat()}{suffix}.jsonl.gz")
        tally = Tally.of(rows)
        moments = [r.received_at for r in rows]
        manifest = ArchiveManifest(
            table=partition.table,
            day=partition.start,
            file=path,
            rows=tally.rows,
            id_sum=tally.id_sum,
            min_received_at=min(moments, default=None),
            max_received_at=max(moments, default=None),
            sha256="0" * 64,
        )
        self.files[path] = (manifest, rows)
        return manifest

    def verify(self, file: Path) -> ArchiveManifest:
        if file not in self.files:
            raise ArchiveError(f"{file}: no manifest beside it")
        if file in self.spoiled:
            raise ArchiveError(f"{file}: sha256 differs from its manifest; corrupt or truncated")
        manifest, rows = self.files[file]
        if Tally.of(rows) != manifest.tally:
            raise ArchiveError(f"{file}: its rows do not add up to its manifest")
        return manifest

    def read(self, file: Path) -> Iterator[Record]:
        return iter(self.files[file][1])

    def set_aside(self, file: Path) -> None:
        if file in self.files:
            self.aside[file] = self.files.pop(file)

    def archived(self, partition: Partition) -> list[ArchiveManifest]:
        return [m for m, _rows in self.files.values() if m.partition == partition]

    def corrupt(self, file: Path) -> None:
        self.spoiled.add(file)

    def rows_in(self, table: ArchivedTable) -> list[Record]:
        return [r for m, rows in self.files.values() if m.table is table for r in rows]


@define
class FakeLock(Lock):
    held_elsewhere: bool = False
    held: bool = False

    def acquire(self) -> bool:
        if self.held_elsewhere:
            return False
        self.held = True
        return True

    def release(self) -> None:
        self.held = False


@define
class RecordingProgress(Progress):
    notes: list[str] = Factory(list)
    begun: list[tuple[str, int]] = Factory(list)
    advanced: int = 0

    def begin(self, label: str, total: int) -> None:
        self.begun.append((label, total))

    def advance(self, rows: int) -> None:
        self.advanced += rows

    def note(self, message: str) -> None:
        self.notes.append(message)
