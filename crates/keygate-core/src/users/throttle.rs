//! Login throttling, in process, with bounded memory.
//!
//! Per normalized username (known or not, so throttling reveals nothing):
//! after `free_failures` consecutive failures every further attempt waits
//! `base_delay` doubled per extra failure, capped at `max_delay`, counted
//! from the last failure; a success resets it. Per client address: at most
//! `client_failures` failures in any sliding `client_window` (the failure
//! times are kept, at most that many per client). IPv6 clients are grouped
//! by /64, the block one subscriber usually holds.
//!
//! An attempt is counted as a failure when it is admitted, before any
//! hashing, and forgiven if it succeeds: concurrent attempts therefore cannot
//! all slip through one open slot. A refused attempt changes nothing.
//! When a table is full, stale entries go first, then the least recently
//! failed half; entries idle for `forget_after` are dropped.
//!
//! `Throttle` is the seam: `LoginThrottle` here is one process's; a shared
//! one (Redis, in keygate-cluster) stands behind the same trait so N nodes
//! throttle as one, and falls back to this one with thresholds divided by N.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use async_trait::async_trait;
use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub base_delay_ms: i64,
    pub max_delay_ms: i64,
    pub client_failures: usize,
    pub client_window_ms: i64,
    /// A username's failures are forgotten this long after the last one.
    pub forget_after_ms: i64,
    /// Most usernames and most clients remembered (each table).
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_ms: 1000,
            max_delay_ms: 15 * 60 * 1000,
            client_failures: 20,
            client_window_ms: 15 * 60 * 1000,
            forget_after_ms: 24 * 3600 * 1000,
            max_entries: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct UserFailures {
    count: u32,
    last_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6Prefix(u64),
}

fn client_key(ip: IpAddr) -> ClientKey {
    match ip {
        IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => ClientKey::V4(u32::from(v4)),
            None => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
        },
    }
}

/// An admitted attempt; report how it ended with `succeeded` or `forgive`.
#[derive(Debug)]
#[must_use]
pub struct Admitted {
    user: String,
    client: ClientKey,
    at_ms: i64,
    /// Which implementation admitted it, for one that can fall back to
    /// another (0: this one's own; see `Admitted::via`).
    via: u8,
}

impl Admitted {
    /// The same attempt, marked as admitted by implementation `via`; a
    /// shared throttle admits with its own store or its local fallback and
    /// must report the outcome to the one that counted it.
    pub fn marked(mut self, via: u8) -> Self {
        self.via = via;
        self
    }

    pub fn via(&self) -> u8 {
        self.via
    }

    /// The username the attempt was for (normalized).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The client's throttling key: an IPv4 address or an IPv6 /64, as text.
    pub fn client_key(&self) -> String {
        match self.client {
            ClientKey::V4(v) => std::net::Ipv4Addr::from(v).to_string(),
            ClientKey::V6Prefix(p) => format!("{:x}/64", p),
        }
    }

    /// An attempt admitted elsewhere (a shared store), with this module's
    /// grouping of the client.
    pub fn new(user: &str, client: IpAddr, at_ms: i64, via: u8) -> Self {
        Self {
            user: user.to_owned(),
            client: client_key(client),
            at_ms,
            via,
        }
    }
}

/// How an admitted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password matched: the username starts afresh, the client's
    /// provisional failure is withdrawn.
    Succeeded,
    /// It failed; it was counted when admitted.
    Failed,
    /// It could not be decided (storage failed): it counts as nothing.
    Forgiven,
}

/// Login throttling: admit an attempt (counted as a failure until told
/// otherwise) or answer how many seconds to wait; then report its outcome.
#[async_trait]
pub trait Throttle: Send + Sync {
    async fn admit(&self, user: &str, client: IpAddr, now_ms: i64) -> Result<Admitted, u64>;
    async fn settle(&self, attempt: Admitted, outcome: Outcome);
}

#[async_trait]
impl Throttle for LoginThrottle {
    async fn admit(&self, user: &str, client: IpAddr, now_ms: i64) -> Result<Admitted, u64> {
        LoginThrottle::admit(self, user, client, now_ms)
    }

    async fn settle(&self, attempt: Admitted, outcome: Outcome) {
        match outcome {
            Outcome::Succeeded => self.succeeded(attempt),
            Outcome::Failed => self.failed(attempt),
            Outcome::Forgiven => self.forgive(attempt),
        }
    }
}

pub struct LoginThrottle {
    config: ThrottleConfig,
    users: Mutex<HashMap<String, UserFailures>>,
    clients: Mutex<HashMap<ClientKey, VecDeque<i64>>>,
}

fn ceil_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0).saturating_add(999) / 1000)
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Keeps `map` under `max` entries: drops what `stale` says, then, unless
/// that freed a quarter, the older half by `age`. Each full scan frees many
/// slots, so a table kept full by a flood costs O(1) per insert on average.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    stale: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> i64,
) {
    if map.len() < max {
        return;
    }
    map.retain(|_, v| !stale(v));
    if map.len() < max - max / 4 {
        return;
    }
    let mut times: Vec<i64> = map.values().map(&age).collect();
    let mid = times.len() / 2;
    let (_, median, _) = times.select_nth_unstable(mid);
    let median = *median;
    map.retain(|_, v| age(v) > median);
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            users: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn user_delay_ms(&self, count: u32, share: u32) -> i64 {
        let free = (self.config.free_failures / share.max(1)).max(1);
        if count < free {
            return 0;
        }
        let doublings = (count - free).min(40);
        self.config
            .base_delay_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.config.max_delay_ms)
    }

    /// Admits an attempt for `user` (normalized) from `client` and counts it
    /// as a failure until told otherwise, or answers how many seconds to wait.
    pub fn admit(&self, user: &str, client: IpAddr, now_ms: i64) -> Result<Admitted, u64> {
        self.admit_share(user, client, now_ms, 1)
    }

    /// As `admit`, with the free failures and the client's failures divided
    /// by `share` (at least one each): this node's part of a throttle that
    /// N nodes enforce together while their shared store is unavailable.
    pub fn admit_share(
        &self,
        user: &str,
        client: IpAddr,
        now_ms: i64,
        share: u32,
    ) -> Result<Admitted, u64> {
        let key = client_key(client);
        // Both held from the check to the count, so two concurrent
        // attempts cannot both pass the last free slot.
        let mut clients = self.clients.lock();
        let mut users = self.users.lock();
        self.client_wait(&mut clients, key, now_ms, share)?;
        self.user_wait(&users, user, now_ms, share)?;
        self.count_client(&mut clients, key, now_ms);
        self.count_user(&mut users, user, now_ms);
        Ok(Admitted {
            user: user.to_owned(),
            client: key,
            at_ms: now_ms,
            via: 0,
        })
    }

    /// Drops the client's failures older than the window; refuses while
    /// its share of `client_failures` is used up.
    fn client_wait(
        &self,
        clients: &mut HashMap<ClientKey, VecDeque<i64>>,
        key: ClientKey,
        now_ms: i64,
        share: u32,
    ) -> Result<(), u64> {
        let cfg = self.config;
        let client_failures = (cfg.client_failures / share.max(1) as usize).max(1);
        let window_start = now_ms - cfg.client_window_ms;
        if let Some(times) = clients.get_mut(&key) {
            while times.front().is_some_and(|&t| t <= window_start) {
                times.pop_front();
            }
            if times.len() >= client_failures
                && let Some(&oldest) = times.front()
            {
                return Err(ceil_secs(oldest + cfg.client_window_ms - now_ms));
            }
        }
        Ok(())
    }

    /// Refuses until the username's back-off since its last failure ends.
    fn user_wait(
        &self,
        users: &HashMap<String, UserFailures>,
        user: &str,
        now_ms: i64,
        share: u32,
    ) -> Result<(), u64> {
        if let Some(f) = users.get(user) {
            let fresh = now_ms - f.last_ms < self.config.forget_after_ms;
            let open_at = f.last_ms + self.user_delay_ms(f.count, share);
            if fresh && now_ms < open_at {
                return Err(ceil_secs(open_at - now_ms));
            }
        }
        Ok(())
    }

    fn count_client(
        &self,
        clients: &mut HashMap<ClientKey, VecDeque<i64>>,
        key: ClientKey,
        now_ms: i64,
    ) {
        let cfg = self.config;
        let window_start = now_ms - cfg.client_window_ms;
        if !clients.contains_key(&key) {
            make_room(
                clients,
                cfg.max_entries,
                |t| t.back().is_none_or(|&last| last <= window_start),
                |t| t.back().copied().unwrap_or(i64::MIN),
            );
        }
        let times = clients.entry(key).or_default();
        times.push_back(now_ms);
        if times.len() > cfg.client_failures {
            times.pop_front();
        }
    }

    /// A failure more for `user`; one older than `forget_after_ms` starts
    /// the count afresh.
    fn count_user(&self, users: &mut HashMap<String, UserFailures>, user: &str, now_ms: i64) {
        let cfg = self.config;
        if !users.contains_key(user) {
            make_room(
                users,
                cfg.max_entries,
                |f| now_ms - f.last_ms >= cfg.forget_after_ms,
                |f| f.last_ms,
            );
        }
        let entry = users.entry(user.to_owned()).or_insert(UserFailures {
            count: 0,
            last_ms: now_ms,
        });
        if now_ms - entry.last_ms >= cfg.forget_after_ms {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last_ms = now_ms;
    }

    /// The attempt succeeded: the username starts afresh and the client's
    /// provisional failure is withdrawn (its earlier failures stay).
    pub fn succeeded(&self, attempt: Admitted) {
        self.users.lock().remove(&attempt.user);
        self.withdraw(&attempt);
    }

    /// The attempt could not be decided (storage failed): it counts as
    /// nothing, so an outage does not lock users out.
    pub fn forgive(&self, attempt: Admitted) {
        if let Some(f) = self.users.lock().get_mut(&attempt.user) {
            f.count = f.count.saturating_sub(1);
        }
        self.withdraw(&attempt);
    }

    /// The attempt failed; it was counted when admitted.
    pub fn failed(&self, attempt: Admitted) {
        drop(attempt);
    }

    fn withdraw(&self, attempt: &Admitted) {
        let mut clients = self.clients.lock();
        if let Some(times) = clients.get_mut(&attempt.client)
            && let Some(i) = times.iter().rposition(|&t| t == attempt.at_ms)
        {
            times.remove(i);
        }
    }

    pub fn tracked(&self) -> (usize, usize) {
        (self.users.lock().len(), self.clients.lock().len())
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::{ManualClock, MillisClock};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fail(t: &LoginThrottle, user: &str, client: &str, clock: &ManualClock) -> Result<(), u64> {
        t.admit(user, ip(client), clock.now_millis())
            .map(|a| t.failed(a))
    }

    #[test]
    fn five_free_failures_then_doubling_delays_capped_and_reset_by_success() {
        let clock = ManualClock::new(1_000_000);
        // Many clients, so the per-client limit stays out of the way.
        let t = LoginThrottle::default();
        let mut n = 0;
        let mut client = || {
            n += 1;
            format!("10.0.{}.{}", n / 250, n % 250)
        };
        for _ in 0..5 {
            fail(&t, "alice", &client(), &clock).unwrap();
        }
        // 6th attempt: must wait 1 s after the 5th failure.
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(1));
        // A refused attempt does not extend the wait.
        clock.advance_millis(999);
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(1));
        clock.advance_millis(1);
        fail(&t, "alice", &client(), &clock).unwrap();
        // After 6 failures: 2 s, then 4 s.
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(2));
        clock.advance_secs(2);
        fail(&t, "alice", &client(), &clock).unwrap();
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(4));
        // Other usernames are unaffected.
        fail(&t, "bob", &client(), &clock).unwrap();
        // The delay is capped at 15 minutes.
        for _ in 0..20 {
            loop {
                match fail(&t, "alice", &client(), &clock) {
                    Ok(()) => break,
                    Err(wait) => {
                        assert!(wait <= 900, "{wait}");
                        clock.advance_secs(i64::try_from(wait).unwrap());
                    }
                }
            }
        }
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(900));
        clock.advance_secs(900);
        let a = t
            .admit("alice", ip("192.0.2.1"), clock.now_millis())
            .unwrap();
        t.succeeded(a);
        for _ in 0..5 {
            fail(&t, "alice", &client(), &clock).unwrap();
        }
        assert_eq!(fail(&t, "alice", &client(), &clock), Err(1));
    }

    #[test]
    fn twenty_failures_per_client_in_a_sliding_fifteen_minutes() {
        let clock = ManualClock::new(5_000_000);
        let t = LoginThrottle::default();
        for i in 0..20 {
            // Distinct usernames: only the client limit applies.
            fail(&t, &format!("user{i}"), "203.0.113.7", &clock).unwrap();
            clock.advance_secs(10);
        }
        // The first failure was 200 s ago; it leaves the window in 700 s.
        assert_eq!(fail(&t, "fresh", "203.0.113.7", &clock), Err(700));
        // Another client is not affected; nor is this one for another IPv4.
        fail(&t, "fresh", "203.0.113.8", &clock).unwrap();
        clock.advance_secs(699);
        assert_eq!(fail(&t, "x", "203.0.113.7", &clock), Err(1));
        clock.advance_secs(1);
        fail(&t, "x", "203.0.113.7", &clock).unwrap();
        assert!(fail(&t, "y", "203.0.113.7", &clock).is_err());
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_v4_is_v4() {
        let clock = ManualClock::new(0);
        let t = LoginThrottle::default();
        for i in 0..20 {
            fail(
                &t,
                &format!("u{i}"),
                &format!("2001:db8:1:2::{i:x}"),
                &clock,
            )
            .unwrap();
        }
        assert!(fail(&t, "v", "2001:db8:1:2:ffff::1", &clock).is_err());
        fail(&t, "v", "2001:db8:1:3::1", &clock).unwrap();
        for i in 0..20 {
            fail(&t, &format!("w{i}"), "198.51.100.1", &clock).unwrap();
        }
        assert!(fail(&t, "z", "::ffff:198.51.100.1", &clock).is_err());
    }

    #[test]
    fn success_and_forgiveness_withdraw_the_provisional_failure() {
        let clock = ManualClock::new(0);
        let t = LoginThrottle::default();
        for _ in 0..30 {
            let a = t
                .admit("carol", ip("192.0.2.9"), clock.now_millis())
                .unwrap();
            t.succeeded(a);
            let a = t
                .admit("dave", ip("192.0.2.9"), clock.now_millis())
                .unwrap();
            t.forgive(a);
            clock.advance_millis(1);
        }
        // Neither the client nor the usernames accumulated failures.
        for _ in 0..5 {
            fail(&t, "dave", "192.0.2.9", &clock).unwrap();
        }
        assert!(fail(&t, "dave", "192.0.2.9", &clock).is_err());
    }

    #[test]
    fn memory_stays_bounded_and_stale_entries_are_forgotten() {
        let clock = ManualClock::new(0);
        let t = LoginThrottle::new(ThrottleConfig {
            max_entries: 100,
            ..ThrottleConfig::default()
        });
        for i in 0..10_000_u32 {
            let client = IpAddr::from(i.to_be_bytes());
            let a = t
                .admit(&format!("user{i}"), client, clock.now_millis())
                .unwrap();
            t.failed(a);
            clock.advance_millis(1);
        }
        let (users, clients) = t.tracked();
        assert!(users <= 100 && clients <= 100, "{users} {clients}");

        // A day after the last failure, a locked username starts afresh.
        for _ in 0..5 {
            fail(&t, "eve", "192.0.2.50", &clock).unwrap();
            clock.advance_secs(60);
        }
        assert!(fail(&t, "eve", "192.0.2.51", &clock).is_ok());
        assert!(fail(&t, "eve", "192.0.2.52", &clock).is_err());
        clock.advance_secs(24 * 3600);
        for _ in 0..5 {
            fail(&t, "eve", "192.0.2.53", &clock).unwrap();
        }
    }

    #[test]
    fn a_share_divides_the_free_failures_and_the_client_limit() {
        let clock = ManualClock::new(0);
        let t = LoginThrottle::default();
        let now = clock.now_millis();
        // Two nodes: 5 / 2 = 2 free failures per username...
        for i in 0..2 {
            let a = t
                .admit_share("ann", ip(&format!("192.0.2.{i}")), now, 2)
                .unwrap();
            t.failed(a);
        }
        assert_eq!(
            t.admit_share("ann", ip("192.0.2.9"), now, 2).unwrap_err(),
            1
        );
        // ...and 20 / 2 = 10 failures per client.
        for i in 0..10 {
            let a = t
                .admit_share(&format!("u{i}"), ip("198.51.100.7"), now, 2)
                .unwrap();
            t.failed(a);
        }
        assert!(t.admit_share("v", ip("198.51.100.7"), now, 2).is_err());
        assert!(t.admit("v", ip("198.51.100.7"), now).is_ok());
    }
}
