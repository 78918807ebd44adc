-- Every stored event once. The merge keeps the largest version, and
-- version = 2**64-1 - (event_id >> 64), so if the rare race stored two events with one
-- fingerprint, the earliest (UUIDv7) event_id survives: the same one owners() names.
-- {database} and {on_cluster} are filled in by the migration runner.

-- migrate:up
CREATE TABLE IF NOT EXISTS {database}.events {on_cluster}
(
    event_id UUID,
    fingerprint FixedString(16),
    content FixedString(16),
    received_at DateTime('UTC'),
    source String,
    payload String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(received_at)
ORDER BY fingerprint;

-- migrate:down
DROP TABLE IF EXISTS {database}.events {on_cluster};
