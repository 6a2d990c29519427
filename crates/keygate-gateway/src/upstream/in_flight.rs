//! Upstream requests in flight, in total and per upstream address: each
//! holds a descriptor, and one HTTP/2 client connection can start many.
//!
//! Counted in atomics, one per address, which an endpoint finds once and
//! keeps: a request takes and gives back its place with four atomic
//! updates. (A map under one lock, hashed by address twice per request,
//! cost ~2k instructions of a proxied request's 54k.) Two requests racing
//! for an address's last place may both be refused for a moment, never
//! both admitted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

pub(super) struct InFlight {
    max: AtomicUsize,
    total: AtomicUsize,
    /// Each address's count, shared by every endpoint (of any route, before
    /// and after a reload) that dials it, for as long as one holds it.
    by_address: Mutex<HashMap<Arc<str>, Weak<AtomicUsize>>>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            max: AtomicUsize::new(usize::MAX),
            total: AtomicUsize::new(0),
            by_address: Mutex::default(),
        }
    }
}

/// An endpoint's own handle on its address's count in one pool.
#[derive(Debug, Clone, Default)]
pub struct AddressCount(OnceLock<(usize, Arc<AtomicUsize>)>);

/// One request's place among those in flight, held until its exchange
/// ends.
pub(super) struct Permit {
    in_flight: Arc<InFlight>,
    here: Arc<AtomicUsize>,
}

impl InFlight {
    pub(super) fn limit(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    pub(super) fn acquire(
        self: &Arc<Self>,
        address: &Arc<str>,
        count: &AddressCount,
        per_address: Option<usize>,
    ) -> Option<Permit> {
        let here = self.count_of(address, count);
        let total = self.total.fetch_add(1, Ordering::AcqRel);
        let at_here = here.fetch_add(1, Ordering::AcqRel);
        if total >= self.max.load(Ordering::Relaxed)
            || per_address.is_some_and(|cap| at_here >= cap)
        {
            here.fetch_sub(1, Ordering::AcqRel);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Permit {
            in_flight: self.clone(),
            here,
        })
    }

    /// The endpoint's cached count when it was found in this pool, else
    /// this pool's (found or made, and cached when the endpoint had none).
    fn count_of(self: &Arc<Self>, address: &Arc<str>, count: &AddressCount) -> Arc<AtomicUsize> {
        let pool = Arc::as_ptr(self) as usize;
        if let Some((owner, here)) = count.0.get()
            && *owner == pool
        {
            return here.clone();
        }
        let here = self.shared_count(address);
        let _ = count.0.set((pool, here.clone()));
        here
    }

    fn shared_count(&self, address: &Arc<str>) -> Arc<AtomicUsize> {
        let mut map = self.by_address.lock();
        if let Some(here) = map.get(address).and_then(Weak::upgrade) {
            return here;
        }
        // Addresses no endpoint holds any more go when a new one comes.
        map.retain(|_, w| w.strong_count() > 0);
        let here = Arc::new(AtomicUsize::new(0));
        map.insert(address.clone(), Arc::downgrade(&here));
        here
    }

    #[cfg(test)]
    pub(super) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.here.fetch_sub(1, Ordering::AcqRel);
        self.in_flight.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_address_is_capped_across_endpoints_and_its_places_come_back() {
        let pool = Arc::new(InFlight::default());
        let addr: Arc<str> = Arc::from("127.0.0.1:1");
        // Two routes' endpoints to one address share its count.
        let (a, b) = (AddressCount::default(), AddressCount::default());
        let first = pool.acquire(&addr, &a, Some(2)).unwrap();
        let second = pool.acquire(&addr, &b, Some(2)).unwrap();
        assert!(pool.acquire(&addr, &a, Some(2)).is_none());
        // Another address is not held back.
        let other = pool.acquire(&Arc::from("127.0.0.1:2"), &AddressCount::default(), Some(2));
        assert!(other.is_some());
        drop(first);
        assert!(pool.acquire(&addr, &b, Some(2)).is_some());
        drop((second, other));
        assert_eq!(pool.total(), 0);
    }

    #[test]
    fn the_total_cap_spans_addresses() {
        let pool = Arc::new(InFlight::default());
        pool.limit(1);
        let held = pool.acquire(&Arc::from("a:1"), &AddressCount::default(), None);
        assert!(held.is_some());
        assert!(
            pool.acquire(&Arc::from("b:1"), &AddressCount::default(), None)
                .is_none()
        );
        assert_eq!(pool.total(), 1, "a refused request keeps no place");
    }

    #[test]
    fn an_endpoint_used_with_another_pool_counts_there() {
        let (p1, p2) = (Arc::new(InFlight::default()), Arc::new(InFlight::default()));
        let addr: Arc<str> = Arc::from("a:1");
        let count = AddressCount::default();
        let _held = p1.acquire(&addr, &count, Some(1)).unwrap();
        assert!(p2.acquire(&addr, &count, Some(1)).is_some());
        assert!(p1.acquire(&addr, &count, Some(1)).is_none());
    }
}
