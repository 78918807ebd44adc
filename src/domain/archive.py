"""Archive values: partitions of a table, what one archive file holds, and the checks on it."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from uuid import UUID

from attrs import frozen
from dedup.domain.errors import DedupError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

Record = Event | Duplicate
_UINT64 = 2**64


class ArchiveError(DedupError):
    """An archive file cannot be trusted (missing, corrupt, truncated, not what it claims)."""


class ArchivedTable(enum.Enum):
    """The tables retention manages; events and duplicates go to files, fingerprints do not."""

    EVENTS = "events"
    DUPLICATES = "event_duplicates"
    FINGERPRINTS = "event_fingerprints"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# How far a worker's clock may trail an archive run's, and how long one store attempt may take
# from its journal write to its insert: the slack in the late-row rules below.
LATE_MARGIN = timedelta(hours=1)


def written_late(received_at: datetime, *, now: datetime) -> bool:
    """True when a row for this moment may land in a day an archive run is working on.

    A run archives closed UTC days only; a row of a day that closed (or closes within the
    margin) is journaled before it is stored, so a drop it races cannot lose it.
    """
    return received_at < midnight((now + LATE_MARGIN).astimezone(UTC).date())


@frozen
class Partition:
    """One partition of a table: the rows whose received_at falls in [start, start + days)."""

    table: ArchivedTable
    start: date
    days: int = 1

    @property
    def partition_id(self) -> str:
        """ClickHouse's partition id: YYYYMMDD of the first day (toYYYYMMDD and toMonday alike)."""
        return self.start.strftime("%Y%m%d")

    @property
    def begins(self) -> datetime:
        return midnight(self.start)

    @property
    def ends(self) -> datetime:
        """The first moment after the partition, exclusive."""
        return midnight(self.start + timedelta(days=self.days))

    def closed_before(self, cutoff: datetime) -> bool:
        """True when every moment the partition covers is earlier than the cutoff."""
        return self.ends <= cutoff

    def __str__(self) -> str:
        return f"{self.table.value} {self.start.isoformat()}"


def id_low_bits(event_id: UUID) -> int:
    """The last 8 bytes of an id read little-endian: what ClickHouse sums for the same id."""
    return int.from_bytes(event_id.bytes[8:], "little")


@frozen
class Tally:
    """What a set of rows is, in two numbers: how many, and the sum of their ids mod 2**64.

    The same rows give the same tally in ClickHouse and in a file, in any order, so a file
    whose tally equals a partition's holds that partition's rows (counts alone could match by
    accident after a partial restore).
    """

    rows: int
    id_sum: int

    @classmethod
    def of(cls, records: Iterable[Record]) -> Tally:
        rows = total = 0
        for record in records:
            rows += 1
            total += id_low_bits(record.event_id)
        return cls(rows=rows, id_sum=total % _UINT64)


@frozen
class ArchiveManifest:
    """What one archive file holds; written beside it, checked before anything trusts it."""

    table: ArchivedTable
    day: date
    file: Path
    rows: int
    id_sum: int
    min_received_at: datetime | None
    max_received_at: datetime | None
    sha256: str

    @property
    def tally(self) -> Tally:
        return Tally(rows=self.rows, id_sum=self.id_sum)

    @property
    def partition(self) -> Partition:
        return Partition(table=self.table, start=self.day)


class ArchiveAction(enum.Enum):
    EXPORT_AND_DROP = "export, verify, drop"
    DROP_ARCHIVED = "drop (already in a verified file)"
    DROP = "drop"
    KEEP_CHANGED = "keep (rows changed while exporting; retried next run)"
    PUT_BACK_LATE = "put back late rows a drop raced (archived by the next run)"


@frozen
class ArchiveStep:
    """What a run did, or would do in a dry run, to one partition."""

    partition: Partition
    action: ArchiveAction
    rows: int
    file: Path | None = None
