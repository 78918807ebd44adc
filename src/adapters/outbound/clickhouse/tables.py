"""The tables of DESIGN.md §4 as the adapter sees them; migrations/ creates them."""

from __future__ import annotations

from dedup.adapters.outbound.clickhouse.miniorm import Column, Table

UTC_DATETIME = "DateTime('UTC')"
DUPLICATE_KIND = "Enum8('content' = 1, 'key_conflict' = 2)"
# One place to tune the lookup table's granularity (DESIGN.md §4: keep the batch lookup cheap).
FINGERPRINTS_INDEX_GRANULARITY = 1024

EVENTS = Table(
    name="events",
    columns=(
        Column("event_id", "UUID"),
        Column("fingerprint", "FixedString(16)"),
        Column("content", "FixedString(16)"),
        Column("received_at", UTC_DATETIME),
        Column("source", "String"),
        Column("payload", "String"),
        Column("version", "UInt64"),
    ),
    engine="ReplacingMergeTree(version) PARTITION BY toYYYYMMDD(received_at) ORDER BY fingerprint",
)

EVENT_FINGERPRINTS = Table(
    name="event_fingerprints",
    columns=(
        Column("fingerprint", "FixedString(16)"),
        Column("event_id", "UUID"),
        Column("content", "FixedString(16)"),
        Column("received_at", UTC_DATETIME),
    ),
    engine=(
        "ReplacingMergeTree() PARTITION BY toMonday(received_at) ORDER BY (fingerprint, event_id) "
        f"SETTINGS index_granularity = {FINGERPRINTS_INDEX_GRANULARITY}"
    ),
)

EVENT_DUPLICATES = Table(
    name="event_duplicates",
    columns=(
        Column("event_id", "UUID"),
        Column("fingerprint", "FixedString(16)"),
        Column("original_event_id", "UUID"),
        Column("received_at", UTC_DATETIME),
        Column("kind", DUPLICATE_KIND),
    ),
    engine="ReplacingMergeTree() PARTITION BY toYYYYMMDD(received_at) ORDER BY event_id",
)

# Down migrations leave a row with applied = 0: ClickHouse 18.16 has no synchronous DELETE,
# so the newest row (largest seq) per version is the record.
SCHEMA_MIGRATIONS = Table(
    name="schema_migrations",
    columns=(
        Column("version", "UInt32"),
        Column("name", "String"),
        Column("checksum", "String"),
        Column("applied_at", UTC_DATETIME),
        Column("applied", "UInt8"),
        Column("seq", "UInt64"),
    ),
    engine="ReplacingMergeTree(seq) ORDER BY version",
)

MIGRATED_TABLES = (EVENTS, EVENT_FINGERPRINTS, EVENT_DUPLICATES)

# Read, never migrated: the parts of every MergeTree table, for partitions and recent writes.
SYSTEM_PARTS = Table(
    name="parts",
    columns=(
        Column("database", "String"),
        Column("table", "String"),
        Column("name", "String"),
        Column("partition_id", "String"),
        Column("active", "UInt8"),
        # Bound as UTC text on chDB; the column itself is the server time zone's, same instant.
        Column("modification_time", "DateTime('UTC')"),
    ),
    engine="SystemParts",
)
