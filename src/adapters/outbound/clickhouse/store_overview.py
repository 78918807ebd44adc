"""StoreOverview on ClickHouse, a server or chDB: counts and the newest events, read cheaply.

The live page asks every two seconds, in chDB from the process that also stores: no query
here reads with FINAL or reads a payload beyond the events it shows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from attrs import frozen
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.mappers import Row, utc
from dedup.adapters.outbound.clickhouse.miniorm import Statement, among, ge, ident, qualified
from dedup.adapters.outbound.clickhouse.tables import EVENT_DUPLICATES, EVENTS
from dedup.application.ports import StoreOverview
from dedup.domain.event import EventId
from dedup.domain.outcome import DuplicateKind
from dedup.domain.overview import LatestEvent, StoreCounts

# A copy arrives after its original, but by the clock of the API process that accepted it:
# look for copies from a little before the oldest event shown.
CLOCK_SKEW = timedelta(minutes=5)
_STORED = "stored"


def counts_from_rows(rows: Collection[Row]) -> StoreCounts:
    """Rows of (name, count): `stored`, then one per duplicate kind recorded."""
    found = {str(name): int(number) for name, number in rows}
    return StoreCounts(
        stored=found.get(_STORED, 0),
        duplicates={kind: found.get(kind.value, 0) for kind in DuplicateKind},
    )


def latest_event_from_row(row: Row, *, copies: dict[EventId, int], preview: int) -> LatestEvent:
    """A row of (event_id, received_at, source, payload cut to preview + 1 characters)."""
    event_id, received_at, source, payload = row
    return LatestEvent.of(
        event_id=EventId(event_id),
        received_at=utc(received_at),
        source=source,
        payload=payload,
        copies=copies.get(EventId(event_id), 0),
        preview=preview,
    )


@frozen
class ClickHouseStoreOverview(StoreOverview):
    executor: Executor
    database: str

    def counts(self) -> StoreCounts:
        # Plain count() is answered from part metadata; duplicates read one byte a row.
        events = qualified(self.database, EVENTS.name)
        duplicates = qualified(self.database, EVENT_DUPLICATES.name)
        statement = Statement.text(
            f"SELECT '{_STORED}' AS name, count() AS number FROM {events}"
            f" UNION ALL SELECT toString(kind) AS name, count() AS number FROM {duplicates}"
            " GROUP BY kind"
        )
        return counts_from_rows(self.executor.query(statement))

    def latest(self, *, since: datetime, limit: int, preview: int) -> list[LatestEvent]:
        rows = self.executor.query(self._newest(since, limit=int(limit), preview=int(preview)))
        if not rows:
            return []
        oldest = min(utc(row[1]) for row in rows)
        copies = self._copies([EventId(row[0]) for row in rows], since=oldest - CLOCK_SKEW)
        found = [latest_event_from_row(row, copies=copies, preview=preview) for row in rows]
        # Python's UUID order breaks ties within a second, as elsewhere (ClickHouse's differs).
        return sorted(found, key=lambda e: (e.received_at, e.event_id), reverse=True)

    def _newest(self, since: datetime, *, limit: int, preview: int) -> Statement:
        # The ids come first, from two narrow columns; PREWHERE then reads the payloads of
        # just those rows, not of every row since `since`.
        table = qualified(self.database, EVENTS.name)
        event_id, received_at = ident("event_id"), ident("received_at")
        after = ge(EVENTS["received_at"], since).parts
        return Statement(
            (
                f"SELECT {event_id}, {received_at}, {ident('source')},"
                f" substringUTF8({ident('payload')}, 1, {preview + 1}) FROM {table}"
                f" PREWHERE {event_id} IN (SELECT {event_id} FROM {table} WHERE ",
                *after,
                f" ORDER BY {received_at} DESC, {event_id} DESC LIMIT {limit}) WHERE ",
                *after,
            )
        )

    def _copies(self, originals: list[EventId], *, since: datetime) -> dict[EventId, int]:
        # uniqExact: a redelivered batch may have written a copy's row twice before a merge.
        table = EVENT_DUPLICATES
        original = ident("original_event_id")
        statement = Statement(
            (
                f"SELECT {original}, uniqExact({ident('event_id')})"
                f" FROM {qualified(self.database, table.name)} WHERE ",
                *among(table["original_event_id"], originals).parts,
                " AND ",
                *ge(table["received_at"], since).parts,
                f" GROUP BY {original}",
            )
        )
        return {EventId(row[0]): int(row[1]) for row in self.executor.query(statement)}
