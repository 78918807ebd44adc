"""Exact reads of what is stored, for tests, checks of the accounting invariant and tools."""

from __future__ import annotations

from attrs import frozen
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.mappers import duplicate_from_row, event_from_row
from dedup.adapters.outbound.clickhouse.miniorm import count, select
from dedup.adapters.outbound.clickhouse.tables import (
    EVENT_DUPLICATES,
    EVENT_FINGERPRINTS,
    EVENTS,
    MIGRATED_TABLES,
)
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

_TABLES = {table.name: table for table in MIGRATED_TABLES}


@frozen
class ClickHouseInspector:
    """Reads with FINAL, so rows a merge would fold are counted once."""

    executor: Executor
    database: str

    def events(self) -> list[Event]:
        query = select(self.database, EVENTS, final=True)
        rows = self.executor.query(query.statement())
        return sorted((event_from_row(row) for row in rows), key=lambda e: e.event_id)

    def duplicates(self) -> list[Duplicate]:
        query = select(self.database, EVENT_DUPLICATES, final=True)
        rows = self.executor.query(query.statement())
        return sorted((duplicate_from_row(row) for row in rows), key=lambda d: d.event_id)

    def fingerprint_rows(self) -> list[tuple[bytes, object]]:
        """(fingerprint, event_id) of every row in event_fingerprints, FINAL."""
        query = select(self.database, EVENT_FINGERPRINTS, "fingerprint", "event_id", final=True)
        return [(row[0], row[1]) for row in self.executor.query(query.statement())]

    def count(self, table: str, *, final: bool = True) -> int:
        """Rows in one of events, event_fingerprints, event_duplicates."""
        rows = self.executor.query(count(self.database, _TABLES[table], final=final))
        return int(rows[0][0])
