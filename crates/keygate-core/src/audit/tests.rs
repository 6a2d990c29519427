#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::*;
use crate::ManualClock;
use crate::model::{AuditFilter, PageRequest};

/// Tallies summed by key, as the SQL stores do; `failing` refuses writes.
#[derive(Default)]
struct FakeStore {
    rows: Mutex<HashMap<String, AuditRow>>,
    appended: Mutex<Vec<AuditEntry>>,
    failing: AtomicBool,
}

#[async_trait]
impl AuditStore for FakeStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), Error> {
        self.appended.lock().extend_from_slice(entries);
        Ok(())
    }
    async fn add_audit_tallies(&self, tallies: &[AuditTally]) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Storage("down".into()));
        }
        let mut rows = self.rows.lock();
        for t in tallies {
            rows.entry(t.key.clone())
                .and_modify(|r| {
                    r.count += t.row.count;
                    r.last_at = r.last_at.max(t.row.last_at);
                })
                .or_insert_with(|| t.row.clone());
        }
        Ok(())
    }
    async fn prune_audit(&self, _before: i64, _limit: u32) -> Result<u64, Error> {
        Ok(0)
    }
    async fn list_audit(&self, _: &AuditFilter, _: PageRequest) -> Result<Vec<AuditRow>, Error> {
        Ok(Vec::new())
    }
}

fn failure(source: &str, reason: &'static str) -> Failure<'static> {
    Failure {
        source: Some(source.parse().unwrap()),
        reason,
        route: "/v1/keys",
        method: "GET",
        request_id: None,
    }
}

fn log(config: AuditConfig) -> (Arc<FakeStore>, Arc<ManualClock>, AuditLog) {
    let store = Arc::new(FakeStore::default());
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let log = AuditLog::new(store.clone(), clock.clone(), config);
    (store, clock, log)
}

fn by_action(store: &FakeStore, action: &str) -> Vec<AuditRow> {
    store
        .rows
        .lock()
        .values()
        .filter(|r| r.entry.action == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_flood_from_one_source_is_one_row_per_reason_and_minute() {
    let (store, clock, log) = log(AuditConfig::default());
    for _ in 0..5000 {
        assert!(log.record_failure(failure("203.0.113.7", "NOT_FOUND")));
    }
    assert!(log.record_failure(failure("203.0.113.7", "MALFORMED")));
    assert_eq!(log.flush().await.unwrap(), 5001);
    // Flushed in pieces, the same minute still adds to the same row.
    for _ in 0..7 {
        log.record_failure(failure("203.0.113.7", "NOT_FOUND"));
        log.flush().await.unwrap();
    }
    let rows = by_action(&store, "auth.failed");
    assert_eq!(rows.len(), 2);
    let found = rows
        .iter()
        .find(|r| r.entry.detail["reason"] == "NOT_FOUND")
        .unwrap();
    assert_eq!(found.count, 5007);
    assert_eq!(found.entry.detail["source"], "203.0.113.7");
    // The next minute starts a new row, with first and last times.
    clock.advance_secs(60);
    log.record_failure(failure("203.0.113.7", "NOT_FOUND"));
    clock.advance_secs(30);
    log.record_failure(failure("203.0.113.7", "NOT_FOUND"));
    log.flush().await.unwrap();
    let rows = by_action(&store, "auth.failed");
    assert_eq!(rows.len(), 3);
    let late = rows.iter().find(|r| r.count == 2).unwrap();
    assert_eq!(late.last_at - late.entry.at, 30);
}

#[tokio::test]
async fn an_ipv6_host_is_one_source_and_many_sources_are_capped() {
    let config = AuditConfig {
        tallies_per_minute: 10,
        ..AuditConfig::default()
    };
    let (store, _, log) = log(config);
    for i in 0..100u16 {
        log.record_failure(failure(&format!("2001:db8:0:1::{i:x}"), "NOT_FOUND"));
    }
    for i in 0..1000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        log.record_failure(failure(&ip.to_string(), "NOT_FOUND"));
    }
    log.flush().await.unwrap();
    let rows = by_action(&store, "auth.failed");
    // Ten sources, then `other`: 11 rows however many addresses.
    assert_eq!(rows.len(), 11, "{rows:#?}");
    let v6 = rows
        .iter()
        .find(|r| r.entry.detail["source"] == "2001:db8:0:1::/64")
        .unwrap();
    assert_eq!(v6.count, 100);
    let other = rows
        .iter()
        .find(|r| r.entry.detail["source"] == "other")
        .unwrap();
    assert_eq!(other.count, 1000 - 9);
    assert_eq!(rows.iter().map(|r| r.count).sum::<i64>(), 1100);
}

#[tokio::test]
async fn when_storage_is_down_failures_wait_then_drops_are_counted_and_written() {
    let config = AuditConfig {
        max_pending: 3,
        ..AuditConfig::default()
    };
    let (store, clock, log) = log(config);
    store.failing.store(true, Ordering::SeqCst);
    for reason in ["A", "B", "C"] {
        assert!(log.record_failure(failure("198.51.100.1", reason)));
    }
    assert!(log.flush().await.is_err());
    // Kept: more of a waiting tally is still counted...
    assert!(log.record_failure(failure("198.51.100.1", "A")));
    // ...but a fourth tally would exceed what may wait.
    clock.advance_secs(5);
    assert!(!log.record_failure(failure("198.51.100.1", "D")));
    assert!(!log.record_failure(failure("198.51.100.1", "E")));
    assert!(log.flush().await.is_err());
    assert_eq!(log.waiting(), 6);
    store.failing.store(false, Ordering::SeqCst);
    assert_eq!(log.flush().await.unwrap(), 4);
    let failed = by_action(&store, "auth.failed");
    assert_eq!(failed.iter().map(|r| r.count).sum::<i64>(), 4);
    let dropped = by_action(&store, "audit.dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].count, 2);
    assert_eq!(dropped[0].entry.detail["action"], "auth.failed");
    // Written once.
    assert_eq!(log.waiting(), 0);
    assert_eq!(log.flush().await.unwrap(), 0);
    assert_eq!(by_action(&store, "audit.dropped").len(), 1);
}

#[test]
fn retention_is_bounded() {
    for days in [0, MAX_RETENTION_DAYS + 1] {
        let config = AuditConfig {
            retention_days: days,
            ..AuditConfig::default()
        };
        assert!(config.validate().is_err());
    }
    assert!(AuditConfig::default().validate().is_ok());
}
