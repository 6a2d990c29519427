-- mTLS clients: services that authenticate with a client certificate. A
-- client is matched by a pinned certificate thumbprint (kind 'thumbprint',
-- ca '', pattern the base64url SHA-256) or by a name pattern under a named
-- CA (kind 'spiffe_id' | 'dns' | 'subject'). Identification looks matchers
-- up exactly by (ca, kind, pattern): one index serves thumbprints and
-- patterns alike; the unique one keeps two live clients off one matcher.
CREATE TABLE clients (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    tenant            TEXT,
    scopes            TEXT    NOT NULL,
    rate_limit_limit  INTEGER,
    rate_limit_period INTEGER,
    ca                TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    pattern           TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    version           INTEGER NOT NULL
) STRICT;
CREATE INDEX clients_match ON clients (ca, kind, pattern);
CREATE UNIQUE INDEX clients_live_match ON clients (ca, kind, pattern) WHERE revoked_at IS NULL;
CREATE INDEX clients_tenant_seq ON clients (tenant, seq);
