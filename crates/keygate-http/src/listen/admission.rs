//! Counting a listener's connections against its caps: in total, with a
//! reserved margin above the total, and per client address. Deciding costs
//! one short lock and no I/O, so a flood is refused as fast as it arrives.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Where a new connection stands.
pub enum Admit {
    /// Under the cap: served normally.
    Served(Slot),
    /// Over the cap, on the reserved margin: serves reserved paths only.
    Reserve(Slot),
    /// Over the margin, or its address holds its share already.
    Refused,
}

#[derive(Default)]
struct Counts {
    served: usize,
    reserved: usize,
    by_address: HashMap<IpAddr, usize>,
}

pub struct Admission {
    max: usize,
    reserve: usize,
    per_address: usize,
    counts: Mutex<Counts>,
    emptied: Notify,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
    reserve: bool,
}

/// The unit one client is counted by: an IPv4 address, or an IPv6 /64
/// (what one subscriber is usually given, so one host cannot take a share
/// per address it can pick). IPv4-mapped IPv6 counts as IPv4.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Admission {
    /// `per_address` 0: no per-address cap.
    pub fn new(max: usize, reserve: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            reserve,
            per_address,
            counts: Mutex::new(Counts::default()),
            emptied: Notify::new(),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admit {
        let address = client_of(ip);
        let mut counts = self.counts.lock();
        let held = counts.by_address.get(&address).copied().unwrap_or(0);
        if self.per_address > 0 && held >= self.per_address {
            return Admit::Refused;
        }
        let reserve = if counts.served < self.max {
            counts.served += 1;
            false
        } else if counts.reserved < self.reserve {
            counts.reserved += 1;
            true
        } else {
            return Admit::Refused;
        };
        *counts.by_address.entry(address).or_insert(0) += 1;
        let slot = Slot {
            admission: self.clone(),
            address,
            reserve,
        };
        if reserve {
            Admit::Reserve(slot)
        } else {
            Admit::Served(slot)
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        let counts = self.counts.lock();
        counts.served + counts.reserved
    }

    /// Waits until every connection has closed, or `within` has passed.
    pub async fn drained(&self, within: Duration) {
        let wait = async {
            loop {
                let emptied = self.emptied.notified();
                if self.open() == 0 {
                    return;
                }
                emptied.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts.lock();
        let kind = if self.reserve {
            &mut counts.reserved
        } else {
            &mut counts.served
        };
        *kind = kind.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.address);
            }
        }
        if counts.served + counts.reserved == 0 {
            self.admission.emptied.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_cap_then_the_margin_then_refusal() {
        let a = Admission::new(2, 1, 0);
        let first = a.admit(ip("10.0.0.1"));
        let second = a.admit(ip("10.0.0.2"));
        assert!(matches!(first, Admit::Served(_)));
        assert!(matches!(second, Admit::Served(_)));
        let margin = a.admit(ip("10.0.0.3"));
        assert!(matches!(margin, Admit::Reserve(_)));
        assert!(matches!(a.admit(ip("10.0.0.4")), Admit::Refused));
        // A place freed under the cap is served normally again.
        drop(first);
        let again = a.admit(ip("10.0.0.4"));
        assert!(matches!(again, Admit::Served(_)));
        drop(margin);
        assert!(matches!(a.admit(ip("10.0.0.5")), Admit::Reserve(_)));
        assert_eq!(a.open(), 2);
    }

    #[test]
    fn one_address_gets_its_share_and_an_ipv6_64_is_one_address() {
        let a = Admission::new(100, 0, 2);
        let _held = [a.admit(ip("2001:db8::1")), a.admit(ip("2001:db8::ffff"))];
        assert!(matches!(a.admit(ip("2001:db8::2")), Admit::Refused));
        assert!(matches!(a.admit(ip("2001:db8:0:1::2")), Admit::Served(_)));
        let _v4 = [a.admit(ip("192.0.2.1")), a.admit(ip("::ffff:192.0.2.1"))];
        assert!(matches!(a.admit(ip("192.0.2.1")), Admit::Refused));
    }

    #[tokio::test]
    async fn drained_returns_once_the_last_slot_is_gone() {
        let a = Admission::new(4, 0, 0);
        let slot = a.admit(ip("10.0.0.1"));
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.drained(Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(slot);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
