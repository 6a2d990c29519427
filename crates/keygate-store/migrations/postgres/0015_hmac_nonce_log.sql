-- SQLite's nonce table became an append-only log (see the SQLite migration
-- of the same number). PostgreSQL, which several nodes share, keeps
-- `hmac_nonces` keyed by (key_id, nonce): the unique key is what lets
-- exactly one node record a nonce.
SELECT 1;
