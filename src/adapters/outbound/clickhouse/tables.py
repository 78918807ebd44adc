"""The tables of DESIGN.md §4 as the adapter sees them; migrations/ creates them."""

from __future__ import annotations

from dedup.adapters.outbound.clickhouse.column_types import (
    STRING,
    UINT8,
    UINT32,
    UINT64,
    UTC_DATETIME,
    UUID_TYPE,
    Enum,
    FixedString,
    Named,
    Nullable,
)
from dedup.adapters.outbound.clickhouse.miniorm import Column, Table

DIGEST = FixedString(16)
DUPLICATE_KIND = Enum(bits=8, items=(("content", 1), ("key_conflict", 2)))
# One place to tune the lookup table's granularity (DESIGN.md §4: keep the batch lookup cheap).
FINGERPRINTS_INDEX_GRANULARITY = 1024

# Columns several tables share, declared once so they cannot drift apart.
EVENT_ID = Column("event_id", UUID_TYPE)
FINGERPRINT = Column("fingerprint", DIGEST)
CONTENT = Column("content", DIGEST)
RECEIVED_AT = Column("received_at", UTC_DATETIME)

EVENTS = Table(
    name="events",
    columns=(
        EVENT_ID,
        FINGERPRINT,
        CONTENT,
        RECEIVED_AT,
        Column("source", STRING),
        Column("payload", STRING),
        Column("version", UINT64),
        # The standard fields (migrations/0005): "" and NULL, unknown, in rows written before.
        Column("type", STRING),
        Column("event", STRING),
        Column("user_id", STRING),
        Column("anonymous_id", STRING),
        Column("timestamp", Nullable(UTC_DATETIME)),
    ),
    engine="ReplacingMergeTree(version) PARTITION BY toYYYYMMDD(received_at) ORDER BY fingerprint",
)

EVENT_FINGERPRINTS = Table(
    name="event_fingerprints",
    columns=(
        FINGERPRINT,
        EVENT_ID,
        CONTENT,
        RECEIVED_AT,
    ),
    engine=(
        "ReplacingMergeTree() PARTITION BY toMonday(received_at) ORDER BY (fingerprint, event_id) "
        f"SETTINGS index_granularity = {FINGERPRINTS_INDEX_GRANULARITY}"
    ),
)

EVENT_DUPLICATES = Table(
    name="event_duplicates",
    columns=(
        EVENT_ID,
        FINGERPRINT,
        Column("original_event_id", UUID_TYPE),
        RECEIVED_AT,
        Column("kind", DUPLICATE_KIND),
    ),
    engine="ReplacingMergeTree() PARTITION BY toYYYYMMDD(received_at) ORDER BY event_id",
)

# Down migrations leave a row with applied = 0: ClickHouse 18.16 has no synchronous DELETE,
# so the newest row (largest seq) per version is the record.
SCHEMA_MIGRATIONS = Table(
    name="schema_migrations",
    columns=(
        Column("version", UINT32),
        Column("name", STRING),
        Column("checksum", STRING),
        Column("applied_at", UTC_DATETIME),
        Column("applied", UINT8),
        Column("seq", UINT64),
    ),
    engine="ReplacingMergeTree(seq) ORDER BY version",
)

# Rows written for a closed day, as archive lines, kept until no archive run can have dropped
# them unseen (migrations/0004, docs/operations.md). written_at is the server's, by default.
LATE_ROWS = Table(
    name="late_rows",
    columns=(
        Column("table_name", STRING),
        EVENT_ID,
        RECEIVED_AT,
        Column("record", STRING),
        Column("written_at", UTC_DATETIME),
    ),
    engine=(
        "MergeTree() PARTITION BY toYYYYMMDD(written_at) "
        "ORDER BY (table_name, received_at, event_id)"
    ),
)
# What a writer sends: written_at is left to the server's clock, the one archive runs read.
LATE_ROWS_WRITTEN = Table(
    name=LATE_ROWS.name, columns=LATE_ROWS.columns[:-1], engine=LATE_ROWS.engine
)

MIGRATED_TABLES = (EVENTS, EVENT_FINGERPRINTS, EVENT_DUPLICATES, LATE_ROWS)

# On a cluster (cluster_schema.py) every row of the three goes to the shard its fingerprint
# names: an event, its fingerprint and every copy recorded against it all live on one shard.
SHARDING_KEY = {table.name: "sipHash64(fingerprint)" for table in MIGRATED_TABLES} | {
    # The late-row journal has no fingerprint and needs none: it is read through Distributed.
    LATE_ROWS.name: "rand()",
}

# Read, never migrated: the parts of every MergeTree table, for partitions and recent writes.
SYSTEM_PARTS = Table(
    name="parts",
    columns=(
        *(Column(name, STRING) for name in ("database", "table", "name", "partition_id")),
        Column("active", UINT8),
        # Bound as UTC text on chDB; the column itself is the server time zone's, same instant.
        Column("modification_time", UTC_DATETIME),
    ),
    engine="SystemParts",
)

# Read, never migrated: the servers' <remote_servers>, one row per replica of a shard.
SYSTEM_CLUSTERS = Table(
    name="clusters",
    columns=(
        Column("cluster", STRING),
        Column("shard_num", UINT32),
        Column("replica_num", UINT32),
        Column("host_name", STRING),
        Column("port", Named("UInt16")),
    ),
    engine="SystemClusters",
)
