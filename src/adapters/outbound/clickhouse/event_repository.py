"""EventRepository on ClickHouse: a server (ClickHouseEventRepository) or chDB in-process."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self

from attrs import define

from adapters.outbound.clickhouse.executors import Executor
from adapters.outbound.clickhouse.mappers import holder_from_row, row_from_duplicate, row_from_event
from adapters.outbound.clickhouse.miniorm import Statement, among, ge, le, select
from adapters.outbound.clickhouse.tables import EVENT_DUPLICATES, EVENT_FINGERPRINTS, EVENTS
from adapters.outbound.clickhouse.url import (
    chdb_executor_from_url,
    database_from_url,
    server_executor_from_url,
)
from application.ports import EventRepository
from domain.event import Event, EventId, Holder
from domain.fingerprint import EventFingerprint
from domain.outcome import Duplicate


def utc_now() -> datetime:
    return datetime.now(UTC)


@define
class ClickHouseEventRepository(EventRepository):
    """Events, their fingerprints (via a materialized view) and duplicates in ClickHouse."""

    executor: Executor
    database: str
    window_seconds: int
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def from_url(
        cls, url: str, *, window_seconds: int, clock: Callable[[], datetime] = utc_now
    ) -> Self:
        return cls(
            executor=server_executor_from_url(url),
            database=database_from_url(url),
            window_seconds=window_seconds,
            clock=clock,
        )

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        if not fingerprints:
            return {}
        since = self.clock() - timedelta(seconds=self.window_seconds)
        query = select(
            self.database, EVENT_FINGERPRINTS, "fingerprint", "event_id", "content"
        ).where(
            among(EVENT_FINGERPRINTS["fingerprint"], (fp.digest for fp in fingerprints)),
            ge(EVENT_FINGERPRINTS["received_at"], since),
        )
        found: dict[EventFingerprint, Holder] = {}
        for row in self.executor.query(query.statement()):
            fingerprint, holder = holder_from_row(row)
            # The earliest id owns it, by Python's UUID order: ClickHouse's differs by version.
            current = found.get(fingerprint)
            if current is None or holder.event_id < current.event_id:
                found[fingerprint] = holder
        return found

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        if not duplicates:
            return set()
        moments = [dup.received_at for dup in duplicates]
        query = select(self.database, EVENT_DUPLICATES, "event_id").where(
            among(EVENT_DUPLICATES["event_id"], (dup.event_id for dup in duplicates)),
            ge(EVENT_DUPLICATES["received_at"], min(moments)),  # prunes partitions by day
            le(EVENT_DUPLICATES["received_at"], max(moments)),
        )
        return {EventId(row[0]) for row in self.executor.query(query.statement())}

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        if events:
            self.executor.insert(self.database, EVENTS, [row_from_event(e) for e in events])
        if duplicates:
            rows = [row_from_duplicate(dup) for dup in duplicates]
            self.executor.insert(self.database, EVENT_DUPLICATES, rows)

    def ping(self) -> None:
        """Return when the engine answers; raise BackendUnavailableError if it does not."""
        self.executor.query(Statement.text("SELECT 1"))

    def close(self) -> None:
        self.executor.close()


@define
class ChdbEventRepository(ClickHouseEventRepository):
    """The same tables and queries in the embedded chDB engine (`chdb://PATH`)."""

    @classmethod
    def from_url(
        cls, url: str, *, window_seconds: int, clock: Callable[[], datetime] = utc_now
    ) -> Self:
        return cls(
            executor=chdb_executor_from_url(url),
            database=database_from_url(url),
            window_seconds=window_seconds,
            clock=clock,
        )
