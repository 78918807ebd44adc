"""The late-row journal (late_rows): written by the worker for closed days, read by archive runs.

A worker journals a row of a closed day before it stores it (late_rows_of, then the insert),
so a row whose insert lands between an archive run's export and its DROP PARTITION is still
here afterwards; the run puts back what neither its table nor an archive file holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from attrs import define
from dedup.adapters.outbound.archive_format import line_from_record, record_from_line
from dedup.adapters.outbound.clickhouse.cluster_schema import LOCAL_SUFFIX
from dedup.adapters.outbound.clickhouse.column_types import STRING
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.mappers import Row
from dedup.adapters.outbound.clickhouse.miniorm import (
    Param,
    Statement,
    eq,
    ident,
    lt,
    qualified,
    select,
)
from dedup.adapters.outbound.clickhouse.partition_store import ClickHousePartitionStore
from dedup.adapters.outbound.clickhouse.tables import LATE_ROWS
from dedup.application.ports import LateJournal
from dedup.domain.archive import ArchivedTable, Record, written_late
from dedup.domain.errors import PoisonEventError
from dedup.domain.event import Event


def late_rows_of(records: Sequence[Record], *, now: datetime) -> list[Row]:
    """The journal rows (LATE_ROWS_WRITTEN) for those of the records written late."""
    rows: list[Row] = []
    for record in records:
        if written_late(record.received_at, now=now):
            table = ArchivedTable.EVENTS if isinstance(record, Event) else ArchivedTable.DUPLICATES
            line = line_from_record(record).rstrip(b"\n").decode()
            rows.append((table.value, record.event_id, record.received_at, line))
    return rows


@define
class ClickHouseLateJournal(LateJournal):
    """late_rows of one database; put_back stores through the partition store's restore."""

    executor: Executor
    database: str
    # DEDUP_CLICKHOUSE_CLUSTER: the journal's rows live in each shard's late_rows_local.
    cluster: str | None = None

    def unstored_late(self, table: ArchivedTable, *, before: datetime) -> list[Record]:
        query = select(self.database, LATE_ROWS, "record").where(
            eq(LATE_ROWS["table_name"], table.value), lt(LATE_ROWS["received_at"], before)
        )
        journaled: dict[object, Record] = {}
        for (line,) in self.executor.query(query.statement()):
            record = record_from_line(table, line.encode() if isinstance(line, str) else line)
            journaled.setdefault(record.event_id, record)  # every retry journals it again
        if not journaled:
            return []
        store = ClickHousePartitionStore(executor=self.executor, database=self.database)
        return store.unstored(table, list(journaled.values()))

    def put_back(self, records: Sequence[Record]) -> int:
        store = ClickHousePartitionStore(executor=self.executor, database=self.database)
        try:
            return store.restore(records)
        except PoisonEventError:
            # A journaled row the table refused was never stored (its message went to the
            # dead letters): put back the others one by one, leave it to the dead letters.
            stored = 0
            for record in records:
                with suppress(PoisonEventError):
                    stored += store.restore([record])
            return stored

    def forget_late(self, *, written_before: datetime) -> None:
        # The days are read from the rows (one column), not from one server's system.parts:
        # on a cluster each server lists only its own shard's parts.
        table = qualified(self.database, LATE_ROWS.name)
        days = self.executor.query(
            Statement.text(f"SELECT DISTINCT toString(toYYYYMMDD(`written_at`)) FROM {table}")
        )
        target = table
        if self.cluster:
            local = qualified(self.database, LATE_ROWS.name + LOCAL_SUFFIX)
            target = f"{local} ON CLUSTER {ident(self.cluster)}"
        for partition_id in sorted({row[0] for row in days}):
            day = datetime.strptime(partition_id, "%Y%m%d").replace(tzinfo=UTC)
            if day + timedelta(days=1) <= written_before:  # no row of it is newer
                self.executor.execute(
                    Statement(
                        (f"ALTER TABLE {target} DROP PARTITION ID ", Param(partition_id, STRING))
                    )
                )
