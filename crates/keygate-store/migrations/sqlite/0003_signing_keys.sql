-- JWT signing keys. The private part is sealed (AES-256-GCM) under the
-- master key from configuration; states (pending, active, retired) are
-- computed from activate_at and the clock, never stored.
CREATE TABLE signing_keys (
    kid            TEXT    NOT NULL PRIMARY KEY,
    generation     INTEGER NOT NULL UNIQUE,
    alg            TEXT    NOT NULL,
    public_jwk     TEXT    NOT NULL,
    sealed_private BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    activate_at    INTEGER NOT NULL
) STRICT;
