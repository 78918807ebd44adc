"""Retention on ClickHouse: list, tally, read (FINAL) and drop day partitions; restore rows.

Works the same on the 18.16 server and on chDB: partitions come from system.parts by their
id (YYYYMMDD for toYYYYMMDD and for toMonday alike), and DROP PARTITION ID takes that id.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime

from attrs import define
from dedup.adapters.outbound.clickhouse import tables
from dedup.adapters.outbound.clickhouse.cluster_schema import LOCAL_SUFFIX
from dedup.adapters.outbound.clickhouse.column_types import STRING, UINT64
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.mappers import (
    duplicate_from_row,
    event_from_row,
    row_from_duplicate,
    row_from_event,
)
from dedup.adapters.outbound.clickhouse.miniorm import (
    Param,
    Part,
    Statement,
    Table,
    among,
    eq,
    ge,
    ident,
    le,
    qualified,
    select,
)
from dedup.application.ports import PartitionStore, RestoreTarget
from dedup.domain.archive import ArchivedTable, Partition, Record, Tally
from dedup.domain.event import Event, EventId
from dedup.domain.outcome import Duplicate

_TABLES = {
    ArchivedTable.EVENTS: tables.EVENTS,
    ArchivedTable.DUPLICATES: tables.EVENT_DUPLICATES,
    ArchivedTable.FINGERPRINTS: tables.EVENT_FINGERPRINTS,
}
_DAYS = {ArchivedTable.EVENTS: 1, ArchivedTable.DUPLICATES: 1, ArchivedTable.FINGERPRINTS: 7}

# Pages split a partition by a hash of its sorting key, so the rows a FINAL read folds
# together always land in the same page (a split by time could show both of a pair).
_PAGE_KEY = {
    ArchivedTable.EVENTS: "cityHash64(`fingerprint`)",
    ArchivedTable.DUPLICATES: "cityHash64(toString(`event_id`))",  # 18.16 cannot hash a UUID
}
# The low 8 bytes of each id read little-endian, summed mod 2**64: domain.archive.Tally.
_ID_SUM = (
    "sum(reinterpretAsUInt64(unhex(substring(replaceAll(toString(`event_id`), '-', ''), 17, 16))))"
)
# 18.16 refuses queries over 256 KiB, and the server executor inlines bound values.
_LOOKUP_IDS = 2000


def _within(table: Table, partition: Partition) -> tuple[Part, ...]:
    column = table["received_at"]
    return (
        " WHERE ",
        ident(column.name),
        " >= ",
        Param(partition.begins, column.type),
        " AND ",
        ident(column.name),
        " < ",
        Param(partition.ends, column.type),
    )


@define
class ClickHousePartitionStore(PartitionStore, RestoreTarget):
    """The partition side of one database, through a server or a chDB executor."""

    executor: Executor
    database: str
    page_rows: int = 50_000
    # DEDUP_CLICKHOUSE_CLUSTER: the rows live in each shard's `<table>_local` (cluster_schema).
    cluster: str | None = None

    def partitions(self, table: ArchivedTable) -> list[Partition]:
        if self.cluster:
            return self._cluster_partitions(table)
        parts = tables.SYSTEM_PARTS
        query = select("system", parts, "partition_id").where(
            eq(parts["database"], self.database),
            eq(parts["table"], _TABLES[table].name),
            eq(parts["active"], 1),
        )
        ids = {row[0] for row in self.executor.query(query.statement())}
        found = []
        for partition_id in ids:
            try:
                start = datetime.strptime(partition_id, "%Y%m%d").date()
            except ValueError:
                continue  # not a partition by day or week: not ours to manage
            found.append(Partition(table=table, start=start, days=_DAYS[table]))
        return sorted(found, key=lambda p: p.start)

    def tally(self, partition: Partition) -> Tally:
        table = _TABLES[partition.table]
        head = f"SELECT count(), {_ID_SUM} FROM {qualified(self.database, table.name)} FINAL"
        rows = self.executor.query(Statement((head, *_within(table, partition))))
        count, id_sum = rows[0]
        return Tally(rows=int(count), id_sum=int(id_sum or 0))

    def records(self, partition: Partition) -> Iterator[Record]:
        table = _TABLES[partition.table]
        key = _PAGE_KEY[partition.table]
        from_row = event_from_row if partition.table is ArchivedTable.EVENTS else duplicate_from_row
        pages = max(1, math.ceil(self._raw_rows(table, partition) / self.page_rows))
        head = select(self.database, table, final=True).statement().parts
        for page in range(pages):
            statement = Statement(
                (
                    *head,
                    *_within(table, partition),
                    # modulo(), not %: the server executor's driver formats with %.
                    f" AND modulo({key}, ",
                    Param(pages, UINT64),
                    ") = ",
                    Param(page, UINT64),
                )
            )
            for row in self.executor.query(statement):
                yield from_row(row)

    def drop(self, partition: Partition) -> None:
        """Drop the partition; on a cluster from every shard's own table (ON CLUSTER)."""
        name = _TABLES[partition.table].name
        target = qualified(self.database, name)
        if self.cluster:
            target = (
                f"{qualified(self.database, name + LOCAL_SUFFIX)} ON CLUSTER {ident(self.cluster)}"
            )
        self.executor.execute(
            Statement(
                (
                    f"ALTER TABLE {target} DROP PARTITION ID ",
                    Param(partition.partition_id, STRING),
                )
            )
        )

    def _cluster_partitions(self, table: ArchivedTable) -> list[Partition]:
        """The days (or weeks) holding rows on any shard, read through the Distributed table.

        One server's system.parts lists its own shard only, so the partition key is read from
        the rows themselves: one column of the table, scanned once per archive run.
        """
        day = "toMonday(`received_at`)" if _DAYS[table] == 7 else "toDate(`received_at`)"
        sql = f"SELECT DISTINCT {day} FROM {qualified(self.database, _TABLES[table].name)}"
        days = [row[0] for row in self.executor.query(Statement.text(sql))]
        found = [Partition(table=table, start=start, days=_DAYS[table]) for start in days]
        return sorted(found, key=lambda p: p.start)

    def restore(self, records: Sequence[Record]) -> int:
        events = {r.event_id: r for r in records if isinstance(r, Event)}
        duplicates = {r.event_id: r for r in records if isinstance(r, Duplicate)}
        inserted = 0
        if events:
            missing = self._missing(tables.EVENTS, list(events.values()))
            self.executor.insert(
                self.database, tables.EVENTS, [row_from_event(events[i]) for i in missing]
            )
            inserted += len(missing)
        if duplicates:
            missing = self._missing(tables.EVENT_DUPLICATES, list(duplicates.values()))
            rows = [row_from_duplicate(duplicates[i]) for i in missing]
            self.executor.insert(self.database, tables.EVENT_DUPLICATES, rows)
            inserted += len(missing)
        return inserted

    def unstored(self, table: ArchivedTable, records: Sequence[Record]) -> list[Record]:
        """Those of the records (rows of the table) whose event_id the table does not hold."""
        missing = set(self._missing(_TABLES[table], records))
        return [record for record in records if record.event_id in missing]

    def _missing(self, table: Table, records: Sequence[Record]) -> list[EventId]:
        """The ids among the records that the table does not hold, in the records' order."""
        present: set[object] = set()
        for start in range(0, len(records), _LOOKUP_IDS):
            chunk = records[start : start + _LOOKUP_IDS]
            moments = [r.received_at for r in chunk]
            query = select(self.database, table, "event_id").where(
                among(table["event_id"], (r.event_id for r in chunk)),
                ge(table["received_at"], min(moments)),  # prunes to the partitions concerned
                le(table["received_at"], max(moments)),
            )
            present.update(row[0] for row in self.executor.query(query.statement()))
        return [r.event_id for r in records if r.event_id not in present]

    def _raw_rows(self, table: Table, partition: Partition) -> int:
        """Rows before folding: an upper bound, enough to size the pages."""
        head = f"SELECT count() FROM {qualified(self.database, table.name)}"
        return int(self.executor.query(Statement((head, *_within(table, partition))))[0][0])
