-- Dashboard sessions: one row per logged-in browser. token_hash is an HMAC
-- of the cookie's token under the pepper; the token itself is never stored.
-- secret_hash is the stored hash of the admin key secret that logged in
-- (the same value key_secrets holds), so rotating it away ends the session.
CREATE TABLE console_sessions (
    token_hash   BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    key_id       TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
CREATE INDEX console_sessions_last_seen_at ON console_sessions (last_seen_at);
-- The keys table's status filters and counts: live keys by expiry (the
-- "expiring soon" filter and count), revoked keys by sequence.
CREATE INDEX api_keys_live_expires ON api_keys (expires_at, seq) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_revoked_seq ON api_keys (seq) WHERE revoked_at IS NOT NULL;
