-- Sessions: refresh-token families and their tokens, and the access-token
-- blocklist. Session times are Unix milliseconds (a grace window of a few
-- seconds needs better than whole seconds); a JWT's `exp` stays in seconds.

CREATE TABLE refresh_families (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    id                     TEXT    NOT NULL UNIQUE,
    user_id                TEXT    NOT NULL,
    tenant                 TEXT,
    created_at_ms          INTEGER NOT NULL,
    absolute_expires_at_ms INTEGER NOT NULL,
    last_used_at_ms        INTEGER NOT NULL,
    revoked_at_ms          INTEGER,
    revoked_reason         TEXT
) STRICT;

CREATE INDEX refresh_families_user_seq ON refresh_families (user_id, seq);

-- Used tokens stay until their family is purged: presenting one again is
-- how theft is detected. (family_id, generation) is unique, so a family
-- can never fork into two live tokens.
CREATE TABLE refresh_tokens (
    hash           BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    family_id      TEXT    NOT NULL REFERENCES refresh_families (id),
    generation     INTEGER NOT NULL,
    pepper_version INTEGER NOT NULL,
    issued_at_ms   INTEGER NOT NULL,
    used_at_ms     INTEGER,
    UNIQUE (family_id, generation)
) STRICT;

CREATE TABLE revoked_jtis (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    jti         TEXT    NOT NULL UNIQUE,
    expires_at  INTEGER NOT NULL,
    added_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX revoked_jtis_added_at ON revoked_jtis (added_at_ms);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);
