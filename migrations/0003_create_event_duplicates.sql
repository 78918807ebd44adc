-- Every later copy of a stored event, recorded against the original. A redelivered batch
-- may write the same row twice; ordering by event_id folds it on merge (read with FINAL).

-- migrate:up
CREATE TABLE IF NOT EXISTS {database}.event_duplicates {on_cluster}
(
    event_id UUID,
    fingerprint FixedString(16),
    original_event_id UUID,
    received_at DateTime('UTC'),
    kind Enum8('content' = 1, 'key_conflict' = 2)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(received_at)
ORDER BY event_id;

-- migrate:down
DROP TABLE IF EXISTS {database}.event_duplicates {on_cluster};
