-- SQLite's nonces become an append-only log. SQLite is one node (its
-- `<db>.lock`), so the live nonces and their per-key counts are kept in
-- memory, loaded from this table at start; the table only has to make an
-- accepted nonce outlive the process. Keyed by (key_id, nonce) it took a
-- random B-tree page per nonce, each written whole to the WAL; in rowid
-- order a batch of nonces fills the pages at the end. `hmac_nonce_counts`
-- is no longer written on SQLite (PostgreSQL keeps using both tables).
CREATE TABLE hmac_nonces_log (
    expires_at_ms INTEGER NOT NULL,
    key_id        TEXT    NOT NULL,
    nonce         TEXT    NOT NULL
) STRICT;
INSERT INTO hmac_nonces_log (expires_at_ms, key_id, nonce)
    SELECT expires_at_ms, key_id, nonce FROM hmac_nonces ORDER BY expires_at_ms;
DROP TABLE hmac_nonces;
ALTER TABLE hmac_nonces_log RENAME TO hmac_nonces;
CREATE INDEX hmac_nonces_expiry ON hmac_nonces (expires_at_ms);
DELETE FROM hmac_nonce_counts;
