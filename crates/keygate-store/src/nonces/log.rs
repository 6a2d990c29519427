//! SQLite's nonces: the live ones in memory, every accepted one appended to
//! `hmac_nonces` before its request is answered.
//!
//! A SQLite database has one node (its `<db>.lock`), so memory can hold the
//! whole truth: it is loaded from the table on first use, decides each
//! verdict (replay, quota) in batch order, and the table only has to make
//! an accepted nonce outlive the process. Appended in rowid order, a batch
//! fills the table's last pages; keyed by (key_id, nonce) it dirtied a
//! random page per nonce, each written whole to the WAL: most of a signed
//! request's cost (see `benches/nonces.rs`).

use std::fmt::Write as _;

use keygate_core::Error;
use keygate_core::httpsig::MemoryNonceStore;
use keygate_core::httpsig::replay::{NonceUse, NonceVerdict};
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{Mutex, OnceCell};

use crate::db;
use crate::rows::col;

/// Most live nonces a SQLite node holds, every key together (some 40 bytes
/// each): at the default window of 300 s, 55,000 signed requests a second
/// sustained. Past it signed requests are refused (503) until some expire,
/// rather than a live nonce forgotten.
const LIVE_CAPACITY: usize = 16_000_000;

/// SQLite's durability for the append: WAL at NORMAL is durable across a
/// process crash, which is what a nonce must outlive (see the module doc
/// of `nonces`). Only the log's own connection runs at it.
const RELAXED: &str = "PRAGMA synchronous = NORMAL";

/// A batch is one statement (a statement is its own transaction), so one
/// round trip to sqlx's SQLite thread. Its rows are bound parameters: the
/// text differs with the batch's size, so only the one-row form is kept
/// prepared (one per size would crowd the statement cache). Parsing a row
/// of `VALUES` costs SQLite less than reading one out of a JSON array.
fn append_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(64 + rows * 16);
    sql.push_str("INSERT INTO hmac_nonces (expires_at_ms, key_id, nonce) VALUES ");
    for row in 0..rows {
        let at = row * 3;
        let sep = if row == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}(${}, ${}, ${})", at + 1, at + 2, at + 3);
    }
    sql
}

/// The live nonces and the connection they are appended on.
#[derive(Default)]
pub(super) struct Log {
    live: OnceCell<MemoryNonceStore>,
    /// Taken from the pool for good (`detach`) and left at NORMAL; dropped
    /// after a failed append, so the next batch starts on a fresh one.
    conn: Mutex<Option<AnyConnection>>,
}

impl Log {
    /// The verdict of each of `ns` in their order (an error for one that
    /// found memory full of live nonces); the Fresh ones are appended
    /// before this returns. If the append fails nothing of the batch is
    /// kept and the whole batch answers its error.
    pub(super) async fn record(
        &self,
        pool: &AnyPool,
        ns: &[NonceUse<'_>],
    ) -> Result<Vec<Result<NonceVerdict, Error>>, Error> {
        let Some(first) = ns.first() else {
            return Ok(Vec::new());
        };
        let live = self
            .live
            .get_or_try_init(|| load(pool, first.now_ms))
            .await?;
        let verdicts: Vec<_> = ns.iter().map(|n| live.record_now(n)).collect();
        let fresh: Vec<&NonceUse<'_>> = ns
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| matches!(v, Ok(NonceVerdict::Fresh)))
            .map(|(n, _)| n)
            .collect();
        if let Err(e) = self.append(pool, &fresh).await {
            for n in fresh {
                live.forget(n.key_id, n.nonce);
            }
            return Err(e);
        }
        Ok(verdicts)
    }

    /// Forgets, in memory, what expired by `now_ms` (the table is pruned by
    /// the caller).
    pub(super) fn prune(&self, now_ms: i64) {
        if let Some(live) = self.live.get() {
            live.prune_now(now_ms);
        }
    }

    async fn append(&self, pool: &AnyPool, fresh: &[&NonceUse<'_>]) -> Result<(), Error> {
        if fresh.is_empty() {
            return Ok(());
        }
        let sql = append_sql(fresh.len());
        let mut append = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(fresh.len() == 1);
        for n in fresh {
            append = append.bind(n.expires_at_ms).bind(n.key_id).bind(n.nonce);
        }
        let mut held = self.conn.lock().await;
        let conn = match held.as_mut() {
            Some(conn) => conn,
            None => held.insert(open(pool).await?),
        };
        let appended = append.execute(&mut *conn).await;
        if appended.is_err() {
            *held = None;
        }
        appended.map(drop).map_err(db)
    }
}

/// A connection of the pool's own settings, then relaxed, kept apart from
/// the pool so no other write ever runs at NORMAL.
async fn open(pool: &AnyPool) -> Result<AnyConnection, Error> {
    let mut conn = pool.acquire().await.map_err(db)?.detach();
    sqlx::raw_sql(RELAXED)
        .execute(&mut conn)
        .await
        .map_err(db)?;
    Ok(conn)
}

/// Rows read per query while loading, so loading holds no more at once.
const LOAD_PAGE: i64 = 10_000;

/// The nonces still live at `now_ms`, from the table, a page at a time in
/// rowid order.
async fn load(pool: &AnyPool, now_ms: i64) -> Result<MemoryNonceStore, Error> {
    let live = MemoryNonceStore::new(LIVE_CAPACITY);
    let mut after = 0_i64;
    loop {
        let rows = sqlx::query(
            "SELECT rowid AS at, key_id, nonce, expires_at_ms FROM hmac_nonces \
             WHERE rowid > $1 AND expires_at_ms > $2 ORDER BY rowid LIMIT $3",
        )
        .bind(after)
        .bind(now_ms)
        .bind(LOAD_PAGE)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        for row in &rows {
            let key_id: String = col(row, "key_id")?;
            let nonce: String = col(row, "nonce")?;
            live.remember(&key_id, &nonce, col(row, "expires_at_ms")?, now_ms)?;
            after = col(row, "at")?;
        }
        if rows.len() < LOAD_PAGE as usize {
            return Ok(live);
        }
    }
}
