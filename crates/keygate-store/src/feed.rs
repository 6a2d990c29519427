//! The invalidation feed and cluster membership: the in-transaction append
//! every mutating store method ends with, core's `FeedStore` (reads, prune,
//! heartbeats, acks). The PostgreSQL listener is in `listen`.
//!
//! Why the seq is gapless and in commit order: every append increments the
//! one row of `cluster_head` and holds its row lock (PostgreSQL) or the
//! database's write lock (SQLite) until its transaction ends, so appends
//! commit one at a time in seq order, and a rolled-back append releases its
//! seq to the next. PostgreSQL delivers NOTIFYs at commit, in commit order,
//! so a listener sees seqs rising by one unless it lost some.

use async_trait::async_trait;
use keygate_core::feed::{
    self, CHANNEL_ACK, CHANNEL_INVALIDATION, Change, FeedEntry, FeedStore, NodeBeat, NodeRow,
};
use keygate_core::{Error, MillisClock, SystemClock};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::listen::FeedListener;
use crate::rows::col;
use crate::{Backend, SqlStore, db};

// at_ms on PostgreSQL is its own clock, so every node's lag is measured
// against one clock (writer nodes' clocks may drift).
const INSERT_PG: &str = "INSERT INTO invalidations (seq, at_ms, kind, subject, extra) \
     VALUES ($1, CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT), $2, $3, $4) \
     RETURNING at_ms";
const INSERT_SQLITE: &str = "INSERT INTO invalidations (seq, at_ms, kind, subject, extra) \
     VALUES ($1, $5, $2, $3, $4) RETURNING at_ms";

/// How long SQLite keeps feed entries (PostgreSQL: the nodes' pruner).
const SQLITE_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Appends one entry inside the caller's transaction, as its last writes
/// before commit, and on PostgreSQL queues the NOTIFY that the commit
/// sends. Answers the entry.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    backend: Backend,
    change: Change,
) -> Result<FeedEntry, Error> {
    let head = sqlx::query("UPDATE cluster_head SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let seq: i64 = col(&head, "seq")?;
    let (kind, subject, extra) = change.encode();
    let sql = match backend {
        Backend::Postgres => INSERT_PG,
        Backend::Sqlite => INSERT_SQLITE,
    };
    let mut q = sqlx::query(sql)
        .bind(seq)
        .bind(kind)
        .bind(subject)
        .bind(extra);
    if backend == Backend::Sqlite {
        q = q.bind(SystemClock.now_millis());
    }
    let row = q.fetch_one(&mut *conn).await.map_err(db)?;
    let entry = FeedEntry {
        seq,
        at_ms: col(&row, "at_ms")?,
        change,
    };
    match backend {
        Backend::Postgres => notify(conn, CHANNEL_INVALIDATION, &entry.payload()).await?,
        // One SQLite node runs no cluster loop to prune the feed: each
        // append drops what is past retention (an index range, usually empty).
        Backend::Sqlite => {
            sqlx::query("DELETE FROM invalidations WHERE at_ms < $1 AND seq < $2")
                .bind(entry.at_ms.saturating_sub(SQLITE_RETENTION_MS))
                .bind(seq)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
    }
    Ok(entry)
}

/// Queues a NOTIFY; inside a transaction it is sent at commit, or never.
async fn notify<'c, E>(conn: E, channel: &str, payload: &str) -> Result<(), Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

fn entry(row: &AnyRow) -> Result<FeedEntry, Error> {
    let kind: String = col(row, "kind")?;
    let subject: String = col(row, "subject")?;
    let extra: String = col(row, "extra")?;
    Ok(FeedEntry {
        seq: col(row, "seq")?,
        at_ms: col(row, "at_ms")?,
        change: Change::decode_lenient(&kind, &subject, &extra),
    })
}

fn node(row: &AnyRow) -> Result<NodeRow, Error> {
    let info: String = col(row, "info")?;
    Ok(NodeRow {
        node_id: col(row, "node_id")?,
        started_ms: col(row, "started_ms")?,
        last_seen_ms: col(row, "last_seen_ms")?,
        applied_seq: col(row, "applied_seq")?,
        info: serde_json::from_str(&info)
            .map_err(|e| Error::Storage(format!("unreadable cluster_nodes.info: {e}")))?,
    })
}

impl SqlStore {
    /// Appends `changes` in a transaction of their own: for writers that
    /// have no transaction to join (none today; tests use it).
    pub async fn feed_append(&self, changes: Vec<Change>) -> Result<Vec<FeedEntry>, Error> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            out.push(append(&mut tx, self.backend, change).await?);
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    /// A listener on the feed's channels, LISTENing before it is returned
    /// (so a head read after this misses nothing); `None` on SQLite (one
    /// node, no NOTIFY). It holds its own session, outside the pool; it
    /// must reach the primary directly (no transaction-mode pooler).
    pub async fn feed_listener(&self) -> Result<Option<FeedListener>, Error> {
        match (&self.backend, &self.listen_url) {
            (Backend::Postgres, Some(url)) => FeedListener::connect(url.as_str()).await.map(Some),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl FeedStore for SqlStore {
    async fn feed_head(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT seq FROM cluster_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        col(&row, "seq")
    }

    async fn feed_entries(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, Error> {
        let found = sqlx::query(
            "SELECT seq, at_ms, kind, subject, extra FROM invalidations \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found.iter().map(entry).collect()
    }

    async fn feed_oldest(&self) -> Result<Option<i64>, Error> {
        let row = sqlx::query("SELECT MIN(seq) AS seq FROM invalidations")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        col(&row, "seq")
    }

    async fn feed_prune(&self, before_ms: i64) -> Result<u64, Error> {
        let done = sqlx::query(
            "DELETE FROM invalidations WHERE at_ms < $1 \
             AND seq < (SELECT MAX(seq) FROM invalidations)",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn heartbeat(&self, beat: &NodeBeat) -> Result<(), Error> {
        let info = serde_json::to_string(&beat.info)
            .map_err(|e| Error::Internal(format!("node info: {e}")))?;
        sqlx::query(
            "INSERT INTO cluster_nodes (node_id, started_ms, last_seen_ms, applied_seq, info) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET \
             started_ms = excluded.started_ms, last_seen_ms = excluded.last_seen_ms, \
             applied_seq = excluded.applied_seq, info = excluded.info",
        )
        .bind(beat.node_id.as_str())
        .bind(beat.started_ms)
        .bind(beat.now_ms)
        .bind(beat.applied_seq)
        .bind(info)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, Error> {
        let found = sqlx::query(
            "SELECT node_id, started_ms, last_seen_ms, applied_seq, info FROM cluster_nodes \
             ORDER BY node_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        found.iter().map(node).collect()
    }

    async fn remove_node(&self, node_id: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM cluster_nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn notify_ack(&self, node_id: &str, seq: i64) -> Result<(), Error> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        notify(&self.pool, CHANNEL_ACK, &feed::ack_payload(node_id, seq)).await
    }
}
