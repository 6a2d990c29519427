#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use keygate_core::ManualClock;
use keygate_core::feed::{Change, NodeBeat, NodeRow};
use keygate_core::freshness::{FreshnessMode, StalePolicy};
use keygate_core::keys::apikey::KeyId;
use keygate_store::Notice;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::*;
use crate::run::{Listen, NoticeSource};

/// The feed in memory: rows (some may be "pruned"), the head, node rows.
#[derive(Default)]
pub(crate) struct MemFeed {
    rows: Mutex<Vec<FeedEntry>>,
    head: AtomicI64,
    nodes: Mutex<Vec<NodeRow>>,
    pub(crate) reads: AtomicUsize,
    pub(crate) acks: Mutex<Vec<(String, i64)>>,
    down: std::sync::atomic::AtomicBool,
}

impl MemFeed {
    fn push(&self, change: Change) -> FeedEntry {
        let seq = self.head.fetch_add(1, Ordering::SeqCst) + 1;
        let e = FeedEntry {
            seq,
            at_ms: 1_000,
            change,
        };
        self.rows.lock().push(e.clone());
        e
    }

    fn prune_below(&self, seq: i64) {
        self.rows.lock().retain(|e| e.seq >= seq);
    }

    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::Storage("down".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl FeedStore for MemFeed {
    async fn feed_head(&self) -> Result<i64, Error> {
        self.check()?;
        Ok(self.head.load(Ordering::SeqCst))
    }
    async fn feed_entries(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, Error> {
        self.check()?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        let rows = self.rows.lock();
        Ok(rows
            .iter()
            .filter(|e| e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn feed_oldest(&self) -> Result<Option<i64>, Error> {
        Ok(self.rows.lock().first().map(|e| e.seq))
    }
    async fn feed_prune(&self, _before_ms: i64) -> Result<u64, Error> {
        Ok(0)
    }
    async fn heartbeat(&self, beat: &NodeBeat) -> Result<(), Error> {
        self.check()?;
        let mut nodes = self.nodes.lock();
        nodes.retain(|n| n.node_id != beat.node_id);
        nodes.push(NodeRow {
            node_id: beat.node_id.clone(),
            started_ms: beat.started_ms,
            last_seen_ms: beat.now_ms,
            applied_seq: beat.applied_seq,
            info: beat.info.clone(),
        });
        Ok(())
    }
    async fn nodes(&self) -> Result<Vec<NodeRow>, Error> {
        self.check()?;
        Ok(self.nodes.lock().clone())
    }
    async fn remove_node(&self, node_id: &str) -> Result<bool, Error> {
        let mut nodes = self.nodes.lock();
        let before = nodes.len();
        nodes.retain(|n| n.node_id != node_id);
        Ok(nodes.len() < before)
    }
    async fn notify_ack(&self, node_id: &str, seq: i64) -> Result<(), Error> {
        self.acks.lock().push((node_id.to_owned(), seq));
        Ok(())
    }
}

/// Records what was applied, in order.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<Change>>,
    flushes: AtomicUsize,
}

impl ApplyChange for Recorder {
    fn apply(&self, change: &Change) {
        self.applied.lock().push(change.clone());
    }
    fn flush_all(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A distinct change each call (a fresh key id).
fn change() -> Change {
    Change::HmacChanged {
        key_id: KeyId::generate().unwrap(),
    }
}

struct Fixture {
    feed: Arc<MemFeed>,
    rec: Arc<Recorder>,
    node: Arc<Node>,
    boot: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let feed = Arc::new(MemFeed::default());
    let rec = Arc::new(Recorder::default());
    let boot = Arc::new(ManualClock::new(50_000));
    let freshness = Arc::new(Freshness::new(
        FreshnessMode::Bounded {
            bound_ms: 2000,
            stale: StalePolicy::FailClosed,
            deadline_ms: 200,
        },
        boot.clone(),
    ));
    let node = Arc::new(Node::new(
        "n1".into(),
        feed.clone(),
        rec.clone(),
        freshness,
        Arc::new(ManualClock::new(1_500)),
    ));
    node.freshness().install(node.clone());
    Fixture {
        feed,
        rec,
        node,
        boot,
    }
}

#[tokio::test]
async fn starts_at_the_head_and_applies_notifications_in_order() {
    let f = fixture();
    f.feed.push(change());
    f.node.start_at_head().await.unwrap();
    assert_eq!(f.node.applied(), 1, "what came before start is not applied");
    let e2 = f.feed.push(change());
    let e3 = f.feed.push(change());
    f.node.offer(2, Some(e2.clone())).await.unwrap();
    f.node.offer(3, Some(e3.clone())).await.unwrap();
    f.node.offer(2, Some(e2.clone())).await.unwrap();
    assert_eq!(*f.rec.applied.lock(), vec![e2.change, e3.change]);
    assert_eq!(f.feed.reads.load(Ordering::SeqCst), 0, "payloads suffice");
    assert_eq!(f.node.applied(), 3);
    assert_eq!(f.feed.acks.lock().last(), Some(&("n1".to_owned(), 3)));
}

#[tokio::test]
async fn a_gap_or_a_bare_seq_reads_the_missing_rows_first() {
    let f = fixture();
    f.node.start_at_head().await.unwrap();
    let e1 = f.feed.push(change());
    let e2 = f.feed.push(change());
    let e3 = f.feed.push(change());
    // 1 and 2 were lost; 3 arrives.
    f.node.offer(3, Some(e3.clone())).await.unwrap();
    assert_eq!(
        *f.rec.applied.lock(),
        vec![e1.change.clone(), e2.change.clone(), e3.change.clone()]
    );
    let e4 = f.feed.push(change());
    f.node.offer(4, None).await.unwrap();
    assert_eq!(f.rec.applied.lock().last(), Some(&e4.change));
    assert_eq!(f.rec.flushes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_poll_catches_up_and_confirms_from_before_the_head_was_read() {
    let f = fixture();
    f.node.start_at_head().await.unwrap();
    f.boot.advance_millis(5000);
    assert!(!f.node.freshness().is_fresh());
    let e1 = f.feed.push(change());
    let (head, read_rows) = f.node.sync_to_head().await.unwrap();
    assert_eq!((head, read_rows), (1, true));
    assert_eq!(*f.rec.applied.lock(), vec![e1.change]);
    assert!(f.node.freshness().is_fresh());
    let (_, read_rows) = f.node.sync_to_head().await.unwrap();
    assert!(!read_rows);
}

#[tokio::test]
async fn rows_pruned_while_away_flush_every_cache() {
    let f = fixture();
    f.node.start_at_head().await.unwrap();
    for _ in 0..5 {
        f.feed.push(change());
    }
    f.feed.prune_below(4);
    f.node.sync_to_head().await.unwrap();
    assert_eq!(f.rec.flushes.load(Ordering::SeqCst), 1);
    assert_eq!(f.rec.applied.lock().len(), 2, "4 and 5 still applied");
    assert_eq!(f.node.applied(), 5);
    // Everything pruned but the newest row, which the node already has.
    f.feed.prune_below(6);
    f.node.sync_to_head().await.unwrap();
    assert_eq!(f.rec.flushes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_database_leaves_the_node_unconfirmed() {
    let f = fixture();
    f.node.start_at_head().await.unwrap();
    f.boot.advance_millis(2001);
    f.feed.down.store(true, Ordering::SeqCst);
    assert!(f.node.freshness().ensure().await.is_err());
    f.feed.down.store(false, Ordering::SeqCst);
    f.boot.advance_millis(200);
    f.node.freshness().ensure().await.unwrap();
}

#[test]
fn a_quiet_listener_is_recycled_only_when_its_notification_never_comes() {
    let mut h = HalfOpen::default();
    assert!(!h.after_poll(5, false, 5));
    // The poll found entry 6 first; its notification arrives later: fine.
    assert!(!h.after_poll(6, true, 5));
    assert!(!h.after_poll(6, false, 6));
    // Entry 7 found by the poll and never notified: recycle.
    assert!(!h.after_poll(7, true, 6));
    assert!(h.after_poll(7, false, 6));
    assert!(!h.after_poll(7, false, 6), "once");
}

#[tokio::test]
async fn wait_all_counts_live_nodes_and_lists_the_ones_that_did_not_apply() {
    let f = fixture();
    f.node.start_at_head().await.unwrap();
    let beat = |id: &str, seen: i64, applied: i64| NodeBeat {
        node_id: id.into(),
        started_ms: 0,
        now_ms: seen,
        applied_seq: applied,
        info: serde_json::Value::Null,
    };
    // The wall clock reads 1500: n2 is live, n3's heartbeat is too old.
    f.feed.heartbeat(&beat("n2", 1000, 0)).await.unwrap();
    f.feed.heartbeat(&beat("n3", -5000, 0)).await.unwrap();
    let e1 = f.feed.push(change());
    f.node.offer(1, Some(e1)).await.unwrap();
    let p = f.node.wait_all(3000, 150).await.unwrap();
    assert_eq!(p.seq, 1);
    assert_eq!((p.live_nodes, p.acked), (2, 1));
    assert_eq!(p.unconfirmed, vec!["n2".to_owned()]);
    // n2's acknowledgement arrives while a caller waits.
    let node = f.node.clone();
    let waiter = tokio::spawn(async move { node.wait_all(3000, 5000).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    f.node.acks.record("n2", 1);
    let p = waiter.await.unwrap().unwrap();
    assert_eq!((p.live_nodes, p.acked), (2, 2));
    assert!(p.unconfirmed.is_empty());
}

/// A listener fed by a channel; closing it reports an error.
struct Chan(mpsc::UnboundedReceiver<Result<Option<Notice>, Error>>);

#[async_trait]
impl NoticeSource for Chan {
    async fn next(&mut self) -> Result<Option<Notice>, Error> {
        match self.0.recv().await {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }
}

struct ChanListen {
    next: Mutex<Vec<Chan>>,
    built: AtomicUsize,
}

#[async_trait]
impl Listen for ChanListen {
    async fn listen(&self) -> Result<Box<dyn NoticeSource>, Error> {
        self.built.fetch_add(1, Ordering::SeqCst);
        match self.next.lock().pop() {
            Some(c) => Ok(Box::new(c)),
            None => Err(Error::Storage("no more listeners".into())),
        }
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_loop_applies_notices_and_rebuilds_a_broken_listener() {
    let f = fixture();
    let (tx1, rx1) = mpsc::unbounded_channel();
    let (tx2, rx2) = mpsc::unbounded_channel();
    let listen = Arc::new(ChanListen {
        next: Mutex::new(vec![Chan(rx2), Chan(rx1)]),
        built: AtomicUsize::new(0),
    });
    let task = tokio::spawn(f.node.clone().watch(listen.clone(), None));
    let e1 = f.feed.push(change());
    tx1.send(Ok(Some(Notice::Invalidation {
        seq: 1,
        entry: Some(e1),
    })))
    .unwrap();
    until("entry 1", || f.node.applied() == 1).await;
    tx1.send(Ok(Some(Notice::Ack {
        node_id: "n9".into(),
        seq: 1,
    })))
    .unwrap();
    until("the ack", || f.node.acks.get("n9") == 1).await;
    // The listener breaks; entry 2 commits meanwhile, unnotified.
    f.feed.push(change());
    tx1.send(Err(Error::Storage("reset".into()))).unwrap();
    until("the catch-up", || f.node.applied() == 2).await;
    until("a new listener", || {
        listen.built.load(Ordering::SeqCst) == 2
    })
    .await;
    // A reconnect that may have lost notices triggers a catch-up too.
    f.feed.push(change());
    tx2.send(Ok(None)).unwrap();
    until("entry 3", || f.node.applied() == 3).await;
    task.abort();
}
