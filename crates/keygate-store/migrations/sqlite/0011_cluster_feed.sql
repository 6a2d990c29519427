-- The invalidation feed and cluster membership (many nodes).
-- cluster_head holds the one counter every feed append increments: its row
-- lock is held until commit, so seqs are gapless and in commit order (an
-- identity column is neither: a later seq can commit first).
CREATE TABLE cluster_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO cluster_head (id, seq) VALUES (1, 0);
-- One row per change that can make a cached answer wrong; see
-- keygate_core::feed for the (kind, subject, extra) encoding.
CREATE TABLE invalidations (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    extra TEXT NOT NULL
);
CREATE INDEX invalidations_at_ms ON invalidations (at_ms);
-- Each node's heartbeat; info is JSON text.
CREATE TABLE cluster_nodes (
    node_id TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    applied_seq INTEGER NOT NULL,
    info TEXT NOT NULL
);
