-- A journal of the rows written for a closed day (a late event: a replayed dead letter, a
-- retry that waited out an outage). The worker writes a row here before it writes it to
-- events or event_duplicates, so a row whose insert lands while an archive run is between
-- its export and its DROP PARTITION is found and put back by that run (or the next one).
-- `record` is the row as an archive line (archive_format.py), so it follows the columns of
-- the table it belongs to. Partitioned by the day it was written: a run drops the days no
-- insert can still reach. See docs/operations.md, "Late events and the archive".

-- migrate:up
CREATE TABLE IF NOT EXISTS {database}.late_rows {on_cluster}
(
    table_name String,
    event_id UUID,
    received_at DateTime('UTC'),
    record String,
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(written_at)
ORDER BY (table_name, received_at, event_id);

-- migrate:down
DROP TABLE IF EXISTS {database}.late_rows {on_cluster};
