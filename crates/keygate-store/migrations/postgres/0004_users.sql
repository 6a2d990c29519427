-- Users (PostgreSQL). Usernames are unique server-wide ignoring case,
-- through username_norm (the lowercase form). password_hash is an argon2id
-- PHC string. sessions_cutoff_ms is Unix milliseconds; disabled is 0 or 1.
CREATE TABLE users (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 TEXT   NOT NULL UNIQUE,
    username           TEXT   NOT NULL,
    username_norm      TEXT   NOT NULL,
    password_hash      TEXT   NOT NULL,
    roles              TEXT   NOT NULL,
    tenant             TEXT,
    claims             TEXT   NOT NULL,
    disabled           BIGINT NOT NULL CHECK (disabled IN (0, 1)),
    sessions_cutoff_ms BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL
);

CREATE UNIQUE INDEX users_username_norm ON users (username_norm);
CREATE INDEX users_tenant_seq ON users (tenant, seq);
