-- Nonces of accepted signed requests (RFC 9421), kept until their signature
-- is dead, so a captured request is refused by every node and after a
-- restart. Pruned by expiry. The counts are the per-key quota: live nonces
-- by key and 10-second expiry bucket (spread over a few slots so one busy
-- key does not queue on one row).
CREATE TABLE hmac_nonces (
    key_id        TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX hmac_nonces_expiry ON hmac_nonces (expires_at_ms);

CREATE TABLE hmac_nonce_counts (
    key_id TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    slot   INTEGER NOT NULL,
    used   INTEGER NOT NULL,
    PRIMARY KEY (key_id, bucket, slot)
) STRICT, WITHOUT ROWID;
