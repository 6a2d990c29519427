-- Failed authentications are written as tallies: one row per source,
-- reason, route and minute, with how many times it happened and when last.
-- An event row keeps occurrences = 1 and no last_at (its `at`).
ALTER TABLE audit_log ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN last_at BIGINT;
-- Unique among tallies; NULL (every event row) never conflicts.
ALTER TABLE audit_log ADD COLUMN tally_key TEXT;
CREATE UNIQUE INDEX audit_log_tally_key ON audit_log (tally_key);
