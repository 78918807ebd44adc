-- The tracking spec's standard fields as columns (DESIGN.md §6.1), so that
-- `WHERE event = 'Signed Up'` reads no JSON. The writer fills them from each event's top-level
-- fields; rows written before this migration read "" and NULL: unknown.
-- String, not LowCardinality(String): 18.16 has that only behind an experimental setting.
-- timestamp is the client's clock in whole seconds (DateTime64 does not exist on 18.16; the
-- fraction stays in the payload), NULL when the event had none or an unreadable one.
-- 18.16 has no ADD COLUMN IF NOT EXISTS: one ALTER adds all five, or none.

-- migrate:up
ALTER TABLE {database}.events {on_cluster}
    ADD COLUMN type String,
    ADD COLUMN event String,
    ADD COLUMN user_id String,
    ADD COLUMN anonymous_id String,
    ADD COLUMN timestamp Nullable(DateTime('UTC'));

-- migrate:down
ALTER TABLE {database}.events {on_cluster}
    DROP COLUMN timestamp,
    DROP COLUMN anonymous_id,
    DROP COLUMN user_id,
    DROP COLUMN event,
    DROP COLUMN type;
