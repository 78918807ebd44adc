-- Who owns each fingerprint, kept for the whole dedup window (longer than events).
-- Few partitions (weekly, purged when they leave DEDUP_WINDOW) and a small index granularity
-- keep a batch lookup cheap at hundreds of millions of rows. The materialized view fills it
-- from every insert into events, including a restore; duplicate rows fold on merge.

-- migrate:up
CREATE TABLE IF NOT EXISTS {database}.event_fingerprints {on_cluster}
(
    fingerprint FixedString(16),
    event_id UUID,
    content FixedString(16),
    received_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toMonday(received_at)
ORDER BY (fingerprint, event_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_fingerprints_mv {on_cluster}
TO {database}.event_fingerprints
AS SELECT fingerprint, event_id, content, received_at FROM {database}.events;

-- migrate:down
DROP TABLE IF EXISTS {database}.events_fingerprints_mv {on_cluster};
DROP TABLE IF EXISTS {database}.event_fingerprints {on_cluster};
