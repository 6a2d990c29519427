-- Users (SQLite). Usernames are unique server-wide ignoring case, through
-- username_norm (the lowercase form). password_hash is an argon2id PHC
-- string. sessions_cutoff_ms is Unix milliseconds; disabled is 0 or 1.
CREATE TABLE users (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    username           TEXT    NOT NULL,
    username_norm      TEXT    NOT NULL,
    password_hash      TEXT    NOT NULL,
    roles              TEXT    NOT NULL,
    tenant             TEXT,
    claims             TEXT    NOT NULL,
    disabled           INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    sessions_cutoff_ms INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX users_username_norm ON users (username_norm);
CREATE INDEX users_tenant_seq ON users (tenant, seq);
