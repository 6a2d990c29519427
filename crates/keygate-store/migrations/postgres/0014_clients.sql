-- mTLS clients: services that authenticate with a client certificate. A
-- client is matched by a pinned certificate thumbprint (kind 'thumbprint',
-- ca '', pattern the base64url SHA-256) or by a name pattern under a named
-- CA (kind 'spiffe_id' | 'dns' | 'subject'). Identification looks matchers
-- up exactly by (ca, kind, pattern): one index serves thumbprints and
-- patterns alike; the unique one keeps two live clients off one matcher.
CREATE TABLE clients (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    tenant            TEXT,
    scopes            TEXT    NOT NULL,
    rate_limit_limit  BIGINT,
    rate_limit_period BIGINT,
    ca                TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    pattern           TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    revoked_at        BIGINT,
    version           BIGINT  NOT NULL
);
CREATE INDEX clients_match ON clients (ca, kind, pattern);
CREATE UNIQUE INDEX clients_live_match ON clients (ca, kind, pattern) WHERE revoked_at IS NULL;
CREATE INDEX clients_tenant_seq ON clients (tenant, seq);
