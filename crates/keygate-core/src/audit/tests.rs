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
        kind: FailureKind::Auth,
        source: Some(source.parse().unwrap()),
        principal: None,
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
    assert_eq!(dropped[0].entry.detail["actions"], json!(["auth.failed"]));
    // Written once.
    assert_eq!(log.waiting(), 0);
    assert_eq!(log.flush().await.unwrap(), 0);
    assert_eq!(by_action(&store, "audit.dropped").len(), 1);
}

fn refusal(source: &str, principal: Option<&'static str>) -> Failure<'static> {
    Failure {
        kind: FailureKind::GatewayRefusal,
        principal,
        route: "orders",
        reason: "rate_limited",
        ..failure(source, "rate_limited")
    }
}

#[tokio::test]
async fn refusals_are_tallied_per_principal_apart_from_failed_authentications() {
    let (store, _, log) = log(AuditConfig::default());
    // One key over its limit from many addresses is one tally.
    for i in 0..300u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        assert!(log.record_failure(refusal(&ip.to_string(), Some("key_a"))));
    }
    for _ in 0..7 {
        log.record_failure(refusal("203.0.113.7", Some("key_b")));
        log.record_failure(refusal("203.0.113.7", None));
        log.record_failure(failure("203.0.113.7", "rate_limited"));
    }
    assert_eq!(log.flush().await.unwrap(), 300 + 3 * 7);
    let refused = by_action(&store, "gateway.refused");
    assert_eq!(refused.len(), 3, "{refused:#?}");
    let of = |actor: &str| refused.iter().find(|r| r.entry.actor == actor).unwrap();
    assert_eq!(of("key_a").count, 300);
    assert_eq!(of("key_b").count, 7);
    // A principal's tally names no address; an anonymous one does.
    assert!(of("key_a").entry.detail.get("source").is_none());
    assert_eq!(of("anonymous").entry.detail["source"], "203.0.113.7");
    assert_eq!(of("anonymous").entry.detail["route"], "orders");
    assert_eq!(of("anonymous").count, 7);
    // The same address and reason as an admin API failure: its own row.
    let failed = by_action(&store, "auth.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].count, 7);
}

#[tokio::test]
async fn principals_past_the_cap_are_tallied_as_other() {
    let config = AuditConfig {
        tallies_per_minute: 4,
        ..AuditConfig::default()
    };
    let (store, _, log) = log(config);
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    for key in keys {
        log.record_failure(refusal("198.51.100.1", Some(key)));
    }
    log.flush().await.unwrap();
    let rows = by_action(&store, "gateway.refused");
    assert_eq!(rows.len(), 5, "{rows:#?}");
    let other = rows
        .iter()
        .find(|r| r.entry.detail["source"] == "other")
        .unwrap();
    assert_eq!(other.entry.actor, "anonymous");
    assert_eq!(other.count, 4);
}

#[tokio::test]
async fn dropped_refusals_are_named_in_the_dropped_row() {
    let config = AuditConfig {
        max_pending: 1,
        ..AuditConfig::default()
    };
    let (store, _, log) = log(config);
    assert!(log.record_failure(failure("198.51.100.1", "A")));
    assert!(!log.record_failure(refusal("198.51.100.1", Some("key_a"))));
    store.failing.store(true, Ordering::SeqCst);
    assert!(log.flush().await.is_err());
    store.failing.store(false, Ordering::SeqCst);
    assert_eq!(log.flush().await.unwrap(), 1);
    let dropped = by_action(&store, "audit.dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].count, 1);
    assert_eq!(
        dropped[0].entry.detail["actions"],
        json!(["gateway.refused"])
    );
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
