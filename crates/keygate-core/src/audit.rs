//! The audit log: reading it (`list`), failed authentications and gateway
//! refusals tallied per source, reason and minute, and the retention that
//! prunes old rows.
//!
//! Anyone can fail to authenticate, so failures are not written a row per
//! attempt (one client without credentials once wrote ~7,300 rows/s): they
//! are counted in memory and written as tallies, one row per source, reason,
//! route and minute, which every node adds to. A refusal that came after a
//! verified credential named its principal (a key over its limit, a user
//! without the role) is tallied per principal instead of per address: the
//! principal is the row's actor. The number of tallies a minute can start
//! is capped; failures from further sources or principals are tallied under
//! the source `other`. Nothing is dropped silently: if storage cannot
//! take the tallies, they wait for the next flush, and only once too many
//! wait are new failures dropped, counted, and written later as an
//! `audit.dropped` row. Admin actions never pass through here: each is
//! written in the transaction of the change it records.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::MillisClock;
use crate::error::Error;
use crate::keys::apikey::random_id;
use crate::keys::service::{Admin, finish_page, page_request};
use crate::model::{AuditEntry, AuditFilter, AuditRow, AuditTally, PageRequest};
use crate::store::AuditStore;

pub const DEFAULT_RETENTION_DAYS: u32 = 90;
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Rows deleted per statement, so pruning a large backlog never holds the
/// write lock for long.
const PRUNE_BATCH: u32 = 10_000;
const DAY_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// Rows older than this many days are pruned.
    pub retention_days: u32,
    /// Tallies one minute may start on this node; further sources are
    /// tallied as `other`.
    pub tallies_per_minute: usize,
    /// Tallies held while storage cannot take them; past this, new
    /// failures are dropped (and counted).
    pub max_pending: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
            tallies_per_minute: 256,
            max_pending: 4096,
        }
    }
}

impl AuditConfig {
    pub fn validate(self) -> Result<Self, Error> {
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(Error::invalid(
                "audit_retention_days",
                format!("between 1 and {MAX_RETENTION_DAYS}"),
            ));
        }
        Ok(self)
    }
}

/// What was refused, and so the action of its tally's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The admin API did not authenticate a request: `auth.failed`.
    Auth,
    /// The gateway or forward-auth refused a request: `gateway.refused`.
    GatewayRefusal,
}

impl FailureKind {
    pub fn action(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth.failed",
            FailureKind::GatewayRefusal => "gateway.refused",
        }
    }

    fn bit(self) -> u8 {
        match self {
            FailureKind::Auth => 1,
            FailureKind::GatewayRefusal => 2,
        }
    }
}

/// One failed authentication or refusal, described by values the server
/// chose (a route template or name, a reason code, a verified principal),
/// never by what the client sent.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub kind: FailureKind,
    /// The client's address, when known.
    pub source: Option<IpAddr>,
    /// Whom a verified credential named (a key id, a user id), when the
    /// refusal came after one did: the tally counts them, not the address.
    pub principal: Option<&'a str>,
    pub reason: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub request_id: Option<&'a str>,
}

#[derive(Default)]
struct Pending {
    tallies: HashMap<String, AuditTally>,
    /// The minute `started` counts for, and the tally keys it started.
    minute: i64,
    started: HashSet<String>,
    dropped: i64,
    /// The kinds dropped (`FailureKind::bit`), named in the dropped row.
    dropped_kinds: u8,
    dropped_first: i64,
    dropped_last: i64,
}

/// Counts failures and writes them as tallies; prunes old rows.
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn MillisClock>,
    config: AuditConfig,
    pending: Mutex<Pending>,
}

impl AuditLog {
    pub fn new(
        store: Arc<dyn AuditStore>,
        clock: Arc<dyn MillisClock>,
        config: AuditConfig,
    ) -> Self {
        Self {
            store,
            clock,
            config,
            pending: Mutex::new(Pending::default()),
        }
    }

    pub fn config(&self) -> AuditConfig {
        self.config
    }

    /// A page of the trail, newest first; a tenant admin sees its tenant's
    /// entries only.
    pub async fn list(
        &self,
        admin: &Admin,
        mut filter: AuditFilter,
        page: PageRequest,
    ) -> Result<(Vec<AuditRow>, Option<i64>), Error> {
        if !admin.confine(&mut filter.tenant) {
            return Ok((Vec::new(), None));
        }
        let (limit, ask) = page_request(page);
        let rows = self.store.list_audit(&filter, ask).await?;
        Ok(finish_page(rows, limit, |r| r.entry.seq))
    }

    /// Counts one failure towards its tally. False when it had to be
    /// dropped (too many tallies waiting for storage); the drop itself is
    /// counted and written later. Never waits for storage: the gateway calls
    /// this on its request path.
    pub fn record_failure(&self, failure: Failure<'_>) -> bool {
        let now = self.clock.now_secs();
        let minute = now.div_euclid(60);
        let mut who = Who::of(&failure);
        let mut p = self.pending.lock();
        if p.minute != minute {
            p.minute = minute;
            p.started.clear();
        }
        let mut key = tally_key(minute, &who, &failure);
        if !p.started.contains(&key) && p.started.len() >= self.config.tallies_per_minute {
            who = Who::Source("other".to_owned());
            key = tally_key(minute, &who, &failure);
        }
        if let Some(t) = p.tallies.get_mut(&key) {
            t.row.count += 1;
            t.row.last_at = t.row.last_at.max(now);
            return true;
        }
        if p.tallies.len() >= self.config.max_pending {
            if p.dropped == 0 {
                p.dropped_first = now;
            }
            p.dropped += 1;
            p.dropped_kinds |= failure.kind.bit();
            p.dropped_last = now;
            return false;
        }
        p.started.insert(key.clone());
        let row = failure_row(&key, now, &who, &failure);
        p.tallies.insert(key.clone(), AuditTally { key, row });
        true
    }

    /// Failures counted but not yet written (dropped ones included).
    pub fn waiting(&self) -> i64 {
        let p = self.pending.lock();
        p.tallies.values().map(|t| t.row.count).sum::<i64>() + p.dropped
    }

    /// Writes what was counted since the last flush; on failure it is kept
    /// for the next one. Returns the number of failures written.
    pub async fn flush(&self) -> Result<i64, Error> {
        let (mut batch, dropped) = {
            let mut p = self.pending.lock();
            let tallies: Vec<AuditTally> = p.tallies.drain().map(|(_, t)| t).collect();
            let dropped = Dropped {
                count: p.dropped,
                kinds: p.dropped_kinds,
                first: p.dropped_first,
                last: p.dropped_last,
            };
            p.dropped = 0;
            p.dropped_kinds = 0;
            (tallies, dropped)
        };
        if batch.is_empty() && dropped.count == 0 {
            return Ok(0);
        }
        let written: i64 = batch.iter().map(|t| t.row.count).sum();
        if dropped.count > 0 {
            batch.push(dropped_row(&dropped));
        }
        // One order on every node, so two nodes adding to the same rows in
        // one transaction each cannot deadlock on PostgreSQL.
        batch.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if let Err(e) = self.store.add_audit_tallies(&batch).await {
            self.put_back(batch, dropped);
            return Err(e);
        }
        Ok(written)
    }

    fn put_back(&self, batch: Vec<AuditTally>, dropped: Dropped) {
        let mut p = self.pending.lock();
        for tally in batch {
            // The dropped row is made again from the counts below.
            if tally.row.entry.action == DROPPED_ACTION {
                continue;
            }
            match p.tallies.get_mut(&tally.key) {
                Some(t) => {
                    t.row.count += tally.row.count;
                    t.row.entry.at = t.row.entry.at.min(tally.row.entry.at);
                }
                None => {
                    p.tallies.insert(tally.key.clone(), tally);
                }
            }
        }
        if dropped.count > 0 {
            p.dropped_first = if p.dropped == 0 {
                dropped.first
            } else {
                p.dropped_first.min(dropped.first)
            };
            p.dropped_last = p.dropped_last.max(dropped.last);
            p.dropped += dropped.count;
            p.dropped_kinds |= dropped.kinds;
        }
    }

    /// Deletes rows older than the retention period, in batches, and
    /// records how many went in an `audit.pruned` row.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now = self.clock.now_secs();
        let before = now - i64::from(self.config.retention_days) * DAY_SECS;
        let mut total = 0;
        loop {
            let n = self.store.prune_audit(before, PRUNE_BATCH).await?;
            total += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
        }
        if total > 0 {
            let entry = AuditEntry {
                id: event_id(),
                at: now,
                action: "audit.pruned".into(),
                actor: "system".into(),
                target: None,
                tenant: None,
                request_id: None,
                detail: json!({
                    "rows": total,
                    "before": before,
                    "retention_days": self.config.retention_days,
                }),
                seq: 0,
            };
            self.store.append_audit(&[entry]).await?;
        }
        Ok(total)
    }
}

/// An IPv4 address as it is; an IPv6 address by its /64, which one host
/// usually holds whole.
fn source_label(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

/// Whom a tally counts: a verified principal, else the client's address.
enum Who<'a> {
    Principal(&'a str),
    Source(String),
}

impl<'a> Who<'a> {
    fn of(f: &Failure<'a>) -> Self {
        match f.principal {
            Some(p) => Who::Principal(p),
            None => Who::Source(f.source.map_or_else(|| "unknown".to_owned(), source_label)),
        }
    }
}

fn tally_key(minute: i64, who: &Who<'_>, f: &Failure<'_>) -> String {
    let minute = minute.to_string();
    // A principal's parts are marked, so no principal can name an
    // address's tally; an address's parts are as they always were, so
    // nodes of the previous version add to the same rows.
    let who_parts: &[&str] = match who {
        Who::Source(source) => &[source],
        Who::Principal(principal) => &["principal", principal],
    };
    let mut h = Sha256::new();
    let parts = [f.kind.action(), &minute].into_iter();
    let parts = parts.chain(who_parts.iter().copied());
    for part in parts.chain([f.reason, f.method, f.route]) {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn event_id() -> String {
    random_id("evt_", 20).unwrap_or_default()
}

fn failure_row(key: &str, now: i64, who: &Who<'_>, f: &Failure<'_>) -> AuditRow {
    // The key is unique per row; it stands in for the id should the
    // random source fail.
    let id = random_id("evt_", 20).unwrap_or_else(|_| format!("evt_{}", &key[..20]));
    let mut detail = json!({
        "reason": f.reason,
        "route": f.route,
        "method": f.method,
    });
    // A principal's tally has no one address: its requests may come from
    // many.
    let actor = match who {
        Who::Principal(principal) => (*principal).to_owned(),
        Who::Source(source) => {
            detail["source"] = json!(source);
            "anonymous".to_owned()
        }
    };
    AuditRow {
        entry: AuditEntry {
            id,
            at: now,
            action: f.kind.action().into(),
            actor,
            target: None,
            tenant: None,
            request_id: f.request_id.map(str::to_owned),
            detail,
            seq: 0,
        },
        count: 1,
        last_at: now,
    }
}

/// Failures dropped since the last flush, and the kinds among them.
struct Dropped {
    count: i64,
    kinds: u8,
    first: i64,
    last: i64,
}

const DROPPED_ACTION: &str = "audit.dropped";

fn dropped_row(d: &Dropped) -> AuditTally {
    let id = event_id();
    let actions: Vec<&str> = [FailureKind::Auth, FailureKind::GatewayRefusal]
        .into_iter()
        .filter(|k| d.kinds & k.bit() != 0)
        .map(FailureKind::action)
        .collect();
    AuditTally {
        // Its own row: a key no other tally has.
        key: format!("dropped:{id}:{}", d.first),
        row: AuditRow {
            entry: AuditEntry {
                id,
                at: d.first,
                action: DROPPED_ACTION.into(),
                actor: "system".into(),
                target: None,
                tenant: None,
                request_id: None,
                detail: json!({
                    "actions": actions,
                    "why": "storage could not take the failures counted",
                }),
                seq: 0,
            },
            count: d.count,
            last_at: d.last,
        },
    }
}

#[cfg(test)]
mod tests;
