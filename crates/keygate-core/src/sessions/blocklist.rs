//! The access-token blocklist: `jti`s revoked before their `exp`.
//!
//! Access tokens are verified without storage, so revoking one means every
//! node must refuse its `jti` until it expires on its own. `block` writes to
//! storage (with its invalidation feed entry) and then to this node's set;
//! other nodes add it when the feed reaches them (`remember`), and `sync`,
//! called every [`BLOCKLIST_SYNC_INTERVAL`] from a background task, rereads
//! the table as a second path (and drops expired entries). `is_blocked`
//! sits on the verification hot path and only reads memory; the revocation
//! check gates it on `Freshness` first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::json;

use crate::clock::MillisClock;
use crate::error::Error;
use crate::keys::apikey::random_id;
use crate::model::{AuditEntry, validate_text};
use crate::sessions::AuditContext;
use crate::sessions::model::BlockedJti;
use crate::store::SessionStore;

/// How often to call [`Blocklist::sync`] when several nodes share a database.
pub const BLOCKLIST_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Entries outlive their `exp` by this much, so a verifier's leeway on `exp`
/// never lets a blocked token through in the last moments of its life.
const EXP_MARGIN_SECS: i64 = 300;

/// Each sync re-reads the entries added this recently, whatever their
/// sequence: on PostgreSQL a sequence number is taken at insert but becomes
/// visible at commit, so a lower number can appear after a higher one was
/// seen. Generous, to cover clock skew between nodes; the re-read is small.
const LOOKBACK_MS: i64 = 60_000;

const SYNC_PAGE: u32 = 5_000;

pub struct Blocklist {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn MillisClock>,
    entries: RwLock<HashMap<Box<str>, i64>>,
    // Lets the common case, nothing blocked, skip the lock entirely.
    count: AtomicUsize,
    // The smallest `exp` held, so a sync only walks the set (under the
    // write lock) when something in it has actually expired.
    earliest_exp: AtomicI64,
    cursor: Mutex<i64>,
}

impl Blocklist {
    /// An empty set; call [`Blocklist::sync`] once before serving to load
    /// the entries already stored.
    pub fn new(store: Arc<dyn SessionStore>, clock: Arc<dyn MillisClock>) -> Self {
        Self {
            store,
            clock,
            entries: RwLock::new(HashMap::new()),
            count: AtomicUsize::new(0),
            earliest_exp: AtomicI64::new(i64::MAX),
            cursor: Mutex::new(0),
        }
    }

    /// Refuses `jti` until `exp` (the token's own `exp`, Unix seconds). The
    /// entry is stored (with its audit entry) before this node starts refusing it,
    /// so a successful return means every node will refuse it after its next sync.
    pub async fn block(&self, jti: &str, exp: i64, ctx: &AuditContext) -> Result<(), Error> {
        validate_text("jti", jti)?;
        let now_ms = self.clock.now_millis();
        if exp.saturating_add(EXP_MARGIN_SECS) <= now_ms.div_euclid(1000) {
            // Expired past any leeway: no verifier accepts it any more.
            return Ok(());
        }
        let entry = BlockedJti {
            seq: 0,
            jti: jti.to_owned(),
            expires_at: exp,
            added_at_ms: now_ms,
        };
        let audit = AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: "session.access_token_blocked".to_owned(),
            actor: ctx.actor.clone(),
            target: Some(jti.to_owned()),
            tenant: None,
            request_id: ctx.request_id.clone(),
            detail: json!({ "exp": exp }),
            seq: 0,
        };
        self.store.block_jti(&entry, &audit).await?;
        self.insert(entry.jti, exp);
        Ok(())
    }

    /// Starts refusing `jti` on this node: an entry another node stored,
    /// from the invalidation feed.
    pub fn remember(&self, jti: &str, exp: i64) {
        self.insert(jti.to_owned(), exp);
    }

    fn insert(&self, jti: String, exp: i64) {
        let mut entries = self.entries.write();
        entries.insert(jti.into_boxed_str(), exp);
        self.earliest_exp.fetch_min(exp, Ordering::AcqRel);
        self.count.store(entries.len(), Ordering::Release);
    }

    /// Whether `jti` is blocked on this node: an in-memory lookup.
    pub fn is_blocked(&self, jti: &str) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.entries.read().contains_key(jti)
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads entries other nodes added since the last sync and drops the
    /// expired ones. Returns how many entries were read.
    pub async fn sync(&self) -> Result<usize, Error> {
        let now_ms = self.clock.now_millis();
        let live_after = now_ms.div_euclid(1000) - EXP_MARGIN_SECS;
        let start = *self.cursor.lock();
        let mut after = start;
        let mut since = now_ms - LOOKBACK_MS;
        let mut read = 0;
        loop {
            let page = self
                .store
                .blocked_jtis(after, since, live_after, SYNC_PAGE)
                .await?;
            read += page.len();
            if !page.is_empty() {
                let mut entries = self.entries.write();
                for e in &page {
                    after = after.max(e.seq);
                    entries.insert(e.jti.clone().into_boxed_str(), e.expires_at);
                    self.earliest_exp.fetch_min(e.expires_at, Ordering::AcqRel);
                }
                self.count.store(entries.len(), Ordering::Release);
            }
            if page.len() < SYNC_PAGE as usize {
                break;
            }
            // Later pages follow the sequence alone; the look-back rows
            // came first, in sequence order, on the first page.
            since = i64::MAX;
        }
        {
            let mut cursor = self.cursor.lock();
            *cursor = (*cursor).max(after);
        }
        self.sweep(live_after);
        Ok(read)
    }

    fn sweep(&self, live_after: i64) {
        if self.earliest_exp.load(Ordering::Acquire) > live_after {
            return;
        }
        let mut entries = self.entries.write();
        entries.retain(|_, exp| *exp > live_after);
        let earliest = entries.values().copied().min().unwrap_or(i64::MAX);
        self.earliest_exp.store(earliest, Ordering::Release);
        self.count.store(entries.len(), Ordering::Release);
    }

    /// Deletes stored entries past their `exp` and margin; run daily.
    pub async fn purge(&self, ctx: &AuditContext) -> Result<u64, Error> {
        let before = self.clock.now_secs() - EXP_MARGIN_SECS;
        let audit = AuditEntry {
            id: random_id("evt_", 20)?,
            at: self.clock.now_secs(),
            action: "session.blocklist_purged".to_owned(),
            actor: ctx.actor.clone(),
            target: None,
            tenant: None,
            request_id: ctx.request_id.clone(),
            detail: json!({ "expired_before": before }),
            seq: 0,
        };
        self.store.purge_blocked_jtis(before, &audit).await
    }
}
