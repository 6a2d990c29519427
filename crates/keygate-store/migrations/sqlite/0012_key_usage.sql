-- Verifications per key, hour (Unix seconds, a multiple of 3600) and
-- outcome code. Flushes add to `count`; rows past the retention go by hour.
-- No foreign key: counts may be flushed for a key a moment after it is
-- gone, and a missing key must not fail the whole batch.
CREATE TABLE key_usage (
    key_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key_id, hour, code)
);
CREATE INDEX key_usage_hour ON key_usage (hour);
