-- keygate schema v1 (SQLite). Times are Unix seconds; JSON columns hold
-- serialized JSON text; hashes are 32-byte HMAC-SHA256 values.

CREATE TABLE api_keys (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    tenant            TEXT,
    scopes            TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    env               TEXT    NOT NULL,
    prefix            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    expires_at        INTEGER,
    revoked_at        INTEGER,
    last_used_at      INTEGER,
    rate_limit_limit  INTEGER,
    rate_limit_period INTEGER,
    remaining         INTEGER,
    version           INTEGER NOT NULL
) STRICT;

CREATE INDEX api_keys_tenant_seq ON api_keys (tenant, seq);
CREATE INDEX api_keys_owner_seq ON api_keys (owner, seq);

CREATE TABLE key_secrets (
    hash           BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    key_id         TEXT    NOT NULL REFERENCES api_keys (id),
    pepper_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER
) STRICT;

CREATE INDEX key_secrets_key_id ON key_secrets (key_id);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    target     TEXT,
    tenant     TEXT,
    request_id TEXT,
    detail     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_log_tenant_seq ON audit_log (tenant, seq);
CREATE INDEX audit_log_action_seq ON audit_log (action, seq);
CREATE INDEX audit_log_actor_seq ON audit_log (actor, seq);
CREATE INDEX audit_log_target_seq ON audit_log (target, seq);
CREATE INDEX audit_log_at ON audit_log (at);
