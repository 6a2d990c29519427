-- Sessions: refresh-token families and their tokens, and the access-token
-- blocklist. Session times are Unix milliseconds (a grace window of a few
-- seconds needs better than whole seconds); a JWT's `exp` stays in seconds.

CREATE TABLE refresh_families (
    seq                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                     TEXT   NOT NULL UNIQUE,
    user_id                TEXT   NOT NULL,
    tenant                 TEXT,
    created_at_ms          BIGINT NOT NULL,
    absolute_expires_at_ms BIGINT NOT NULL,
    last_used_at_ms        BIGINT NOT NULL,
    revoked_at_ms          BIGINT,
    revoked_reason         TEXT
);

CREATE INDEX refresh_families_user_seq ON refresh_families (user_id, seq);

-- Used tokens stay until their family is purged: presenting one again is
-- how theft is detected. (family_id, generation) is unique, so a family
-- can never fork into two live tokens.
CREATE TABLE refresh_tokens (
    hash           BYTEA   NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    family_id      TEXT    NOT NULL REFERENCES refresh_families (id),
    generation     BIGINT  NOT NULL,
    pepper_version INTEGER NOT NULL,
    issued_at_ms   BIGINT  NOT NULL,
    used_at_ms     BIGINT,
    UNIQUE (family_id, generation)
);

CREATE TABLE revoked_jtis (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jti         TEXT   NOT NULL UNIQUE,
    expires_at  BIGINT NOT NULL,
    added_at_ms BIGINT NOT NULL
);

CREATE INDEX revoked_jtis_added_at ON revoked_jtis (added_at_ms);
CREATE INDEX revoked_jtis_expires_at ON revoked_jtis (expires_at);
