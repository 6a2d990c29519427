-- Server-wide facts that must agree across restarts and nodes, such as the
-- fingerprint of each pepper version.
CREATE TABLE keygate_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
