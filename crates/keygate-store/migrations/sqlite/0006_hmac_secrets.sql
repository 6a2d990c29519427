-- HMAC request-signing secrets (RFC 9421), one per API key, sealed with
-- AES-256-GCM under the master key (never hashed: keygate must use them).
-- Replacing a key's secret overwrites its row.
CREATE TABLE hmac_secrets (
    key_id     TEXT    NOT NULL PRIMARY KEY REFERENCES api_keys (id),
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
