"""EventRepository on ClickHouse: a server (ClickHouseEventRepository) or chDB in-process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Self, TypeVar

from attrs import define, evolve, field
from dedup.adapters.outbound.clickhouse.cluster_schema import LOCAL_SUFFIX
from dedup.adapters.outbound.clickhouse.column_types import STRING
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.holders import (
    contenders_from_row,
    contests_among,
    held_twice,
    owners_among,
)
from dedup.adapters.outbound.clickhouse.late_journal import late_rows_of
from dedup.adapters.outbound.clickhouse.mappers import (
    Row,
    row_from_duplicate,
    row_from_event,
)
from dedup.adapters.outbound.clickhouse.miniorm import (
    Column,
    Statement,
    Table,
    among,
    eq,
    ge,
    ident,
    le,
    listed,
    lt,
    qualified,
    select,
)
from dedup.adapters.outbound.clickhouse.replicas import EveryReplica
from dedup.adapters.outbound.clickhouse.tables import (
    EVENT_DUPLICATES,
    EVENT_FINGERPRINTS,
    EVENTS,
    LATE_ROWS_WRITTEN,
    SYSTEM_PARTS,
)
from dedup.adapters.outbound.clickhouse.url import (
    chdb_executor_from_url,
    database_from_url,
    server_executor_from_url,
)
from dedup.application.ports import Contender, EventRepository, FingerprintHistory, WriteMark
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event, EventId, Holder
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate

# Values per lookup query: a worker batch (at most 20,000 events) in one. A lookup of random
# fingerprints touches granules all over the table, so each query is close to a scan of the
# window: one query per batch scans it once. The values never enter the SQL text (the server
# gets them as an external table, chDB as a parameter), so no max_query_size applies; the
# bound only keeps a pathological caller from building one enormous set.
LOOKUP_CHUNK = 20_000

# A part is stamped (modification_time, whole seconds) when its insert commits, so a rival a
# lookup missed sits in a part stamped after the mark taken before it. The margin covers the
# rounding, an insert that began before the mark, and a server clock that stepped back.
WRITE_MARK_MARGIN_S = 60
# A refill reads the fingerprints in this many pages, by leading byte: each page is one range
# of the primary key, so a window of hundreds of millions never sits in memory at once.
HISTORY_PAGES = 256
# The virtual column naming the part a row is read from.
_PART = Column("_part", STRING)
# Each replica's own table on a cluster (cluster_schema.py), read when every replica is read.
_LOCAL_FINGERPRINTS = evolve(EVENT_FINGERPRINTS, name=EVENT_FINGERPRINTS.name + LOCAL_SUFFIX)

T = TypeVar("T")
_log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunks(items: Collection[T], size: int = LOOKUP_CHUNK) -> Iterator[list[T]]:
    listed = list(items)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]


@define
class ClickHouseEventRepository(EventRepository, FingerprintHistory):
    """Events, their fingerprints (via a materialized view) and duplicates in ClickHouse."""

    executor: Executor
    database: str
    window_seconds: int
    clock: Callable[[], datetime] = utc_now
    # DEDUP_CLICKHOUSE_CLUSTER: the tables are Distributed over shards (cluster_schema.py).
    cluster: str | None = None
    # On a cluster, the lookups that decide exactly-once read every replica (replicas.py).
    replicas: EveryReplica | None = None
    _directly: bool = field(default=True, init=False)  # what the last lookup could do

    @classmethod
    def from_url(
        cls, url: str, *, window_seconds: int, clock: Callable[[], datetime] = utc_now
    ) -> Self:
        return cls(
            executor=cls.executor_from_url(url),
            database=database_from_url(url),
            window_seconds=window_seconds,
            clock=clock,
        )

    @staticmethod
    def executor_from_url(url: str) -> Executor:
        """The engine from_url opens: a server (`clickhouse://`)."""
        return server_executor_from_url(url)

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        if not fingerprints:
            return {}
        found: dict[EventFingerprint, Holder] = {}
        for chunk in chunks(fingerprints):
            columns = (ident(name) for name in ("fingerprint", "event_id", "content"))
            found.update(owners_among(self._holding(chunk, *columns)))
        return found

    def mark(self) -> WriteMark:
        [(now,)] = self.executor.query(Statement.text("SELECT toUInt32(now())"))
        return WriteMark(int(now))

    def contested(
        self, fingerprints: Collection[EventFingerprint], *, written_after: WriteMark | None = None
    ) -> dict[EventFingerprint, list[Contender]]:
        if not fingerprints:
            return {}
        if written_after is None or self.cluster:
            # On a cluster the parts are every shard's own (system.parts of one server knows
            # its shard only): the whole window is searched, on every replica.
            return self._contested(fingerprints, parts=None)
        # Only the parts written since the mark (a part is stamped when its insert or merge
        # commits). A merge that replaces one of them before the query reads would hide its
        # rows in a part not listed: then the whole window is searched after all.
        parts = self._parts(modified_since=max(0, written_after - WRITE_MARK_MARGIN_S))
        if not parts:
            return {}
        found = self._contested(fingerprints, parts=parts)
        if not parts <= self._parts(modified_since=None):
            return self._contested(fingerprints, parts=None)
        return found

    def _contested(
        self, fingerprints: Collection[EventFingerprint], *, parts: set[str] | None
    ) -> dict[EventFingerprint, list[Contender]]:
        if self.replicas is not None:
            return self._contested_on_every_replica(fingerprints)
        since = self.clock() - timedelta(seconds=self.window_seconds)
        table = EVENT_FINGERPRINTS
        fp, event_id = ident("fingerprint"), ident("event_id")
        among_parts = () if parts is None else (" AND ", *listed(_PART, sorted(parts)).parts)
        found: dict[EventFingerprint, list[Contender]] = {}
        for chunk in chunks(fingerprints):
            # Returns nothing in the common case: only fingerprints held by more than one
            # event come back (unmerged copies of one row count once).
            statement = Statement(
                (
                    f"SELECT {fp}, groupArray({event_id}), groupArray({ident('content')}),"
                    f" groupArray({ident('received_at')})"
                    f" FROM {qualified(self.database, table.name)} WHERE ",
                    *among(table["fingerprint"], (f.digest for f in chunk)).parts,
                    " AND ",
                    *ge(table["received_at"], since).parts,
                    *among_parts,
                    f" GROUP BY {fp} HAVING uniqExact({event_id}) > 1",
                )
            )
            found.update(contenders_from_row(row) for row in self.executor.query(statement))
        return found

    def _contested_on_every_replica(
        self, fingerprints: Collection[EventFingerprint]
    ) -> dict[EventFingerprint, list[Contender]]:
        # Every replica's holders of the batch, not only the fingerprints it holds twice: the
        # two events of a race may sit on two replicas, one each, and only the union holds
        # both. The ids come back as text (the driver reads text ~6x faster than UUIDs); the
        # rare fingerprint held by two events is read again in full.
        found: dict[EventFingerprint, list[Contender]] = {}
        for chunk in chunks(fingerprints):
            twice = held_twice(self._holding(chunk, ident("fingerprint"), "toString(`event_id`)"))
            if twice:
                columns = (ident(name) for name in ("fingerprint", "event_id", "content"))
                rows = self._holding(twice, *columns, ident("received_at"))
                contests = contests_among(rows)
                if len(contests) < len(twice):
                    # The second read saw fewer replicas than the first (one left out, or
                    # the Distributed fallback): a contest it lost is not "none". Try again.
                    raise BackendUnavailableError("clickhouse", "a replica left a contest read")
                found.update(contests)
        return found

    def _holding(self, chunk: Sequence[EventFingerprint], *expressions: str) -> list[Row]:
        """Those columns of the rows in the window holding the fingerprints (of every replica)."""
        since = self.clock() - timedelta(seconds=self.window_seconds)

        def holding(table: Table) -> Statement:
            return Statement(
                (
                    f"SELECT {', '.join(expressions)} FROM {qualified(self.database, table.name)}",
                    " WHERE ",
                    *among(table["fingerprint"], (fp.digest for fp in chunk)).parts,
                    " AND ",
                    *ge(table["received_at"], since).parts,
                )
            )

        if self.replicas is None:
            return self.executor.query(holding(EVENT_FINGERPRINTS))
        try:
            rows = self.replicas.query(holding(_LOCAL_FINGERPRINTS))
        except BackendUnavailableError as silent:
            # No replica of a shard answered this worker's own connections: the shard is
            # down, or <remote_servers> names it by addresses only the servers reach. Read
            # it as the servers do, one replica per shard; a shard that is down fails that
            # read too, and the batch waits it out.
            try:
                rows = self.executor.query(holding(EVENT_FINGERPRINTS))
            except BackendUnavailableError:
                raise silent from None
            self._read_directly(False, silent.detail)
            return rows
        self._read_directly(True)
        return rows

    def _read_directly(self, directly: bool, why: str = "") -> None:
        """Log when lookups stop reading every replica directly, and when they do again."""
        if directly == self._directly:
            return
        self._directly = directly
        if directly:
            _log.info("clickhouse lookups read every replica again")
        else:
            _log.warning(
                "clickhouse lookups read through the Distributed tables, one replica per"
                " shard (%s): a replica still catching up may miss recent events",
                why,
            )

    def _parts(self, *, modified_since: int | None) -> set[str]:
        """Names of the active parts of event_fingerprints (modified since, if given)."""
        parts = SYSTEM_PARTS
        conditions = [
            eq(parts["database"], self.database),
            eq(parts["table"], EVENT_FINGERPRINTS.name),
            eq(parts["active"], 1),
        ]
        if modified_since is not None:
            moment = datetime.fromtimestamp(modified_since, UTC)
            conditions.append(ge(parts["modification_time"], moment))
        query = select("system", parts, "name").where(*conditions)
        return {row[0] for row in self.executor.query(query.statement())}

    def received_since(self, moment: datetime) -> Iterator[EventFingerprint]:
        column = EVENT_FINGERPRINTS["fingerprint"]
        step = 256 // HISTORY_PAGES
        for page in range(HISTORY_PAGES):
            low = bytes([page * step]) + bytes(15)
            conditions = [ge(EVENT_FINGERPRINTS["received_at"], moment), ge(column, low)]
            if page + 1 < HISTORY_PAGES:
                conditions.append(lt(column, bytes([(page + 1) * step]) + bytes(15)))
            query = select(self.database, EVENT_FINGERPRINTS, "fingerprint").where(*conditions)
            for (digest,) in self.executor.query(query.statement()):
                yield EventFingerprint(digest)

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        if not duplicates:
            return set()
        found: set[EventId] = set()
        for chunk in chunks(duplicates):
            moments = [dup.received_at for dup in chunk]
            query = select(self.database, EVENT_DUPLICATES, "event_id").where(
                among(EVENT_DUPLICATES["event_id"], (dup.event_id for dup in chunk)),
                ge(EVENT_DUPLICATES["received_at"], min(moments)),  # prunes partitions by day
                le(EVENT_DUPLICATES["received_at"], max(moments)),
            )
            found.update(EventId(row[0]) for row in self.executor.query(query.statement()))
        return found

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        # Rows of a closed day go to the journal first: an archive run whose drop this insert
        # races finds them there (late_journal.py). A retry journals them again, harmlessly.
        late = late_rows_of([*events, *duplicates], now=self.clock())
        if late:
            self.executor.insert(self.database, LATE_ROWS_WRITTEN, late)
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
        if self.replicas is not None:
            self.replicas.close()


@define
class ChdbEventRepository(ClickHouseEventRepository):
    """The same tables and queries in the embedded chDB engine (`chdb://PATH`)."""

    @staticmethod
    def executor_from_url(url: str) -> Executor:
        """The engine from_url opens: chDB in this process (`chdb://PATH`)."""
        return chdb_executor_from_url(url)
