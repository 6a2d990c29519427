//! The nonce store as `verify_request` meets it: a key at its quota gets
//! `OverQuota` and another key does not; a store that cannot answer makes
//! the request `Unavailable`, never accepted.

use std::sync::Arc;

use async_trait::async_trait;

use super::service::{fixture_with, signed};
use crate::error::Error;
use crate::httpsig::*;

/// A store that cannot answer.
struct Broken;

#[async_trait]
impl NonceStore for Broken {
    async fn record(&self, _: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        Err(Error::Storage("the nonce store is down".into()))
    }
    async fn prune(&self, _: i64) -> Result<u64, Error> {
        Err(Error::Storage("the nonce store is down".into()))
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_refuses() {
    let f = fixture_with(Arc::new(Broken), HmacPolicy::default()).await;
    let s = signed(&f);
    match f.service.verify_request(&s.view(), s.body()).await {
        Err(HmacError::Unavailable(Error::Storage(_))) => {}
        other => panic!("{other:?}"),
    }
    assert!(f.service.prune_nonces().await.is_err());
}

#[tokio::test]
async fn a_key_past_its_quota_is_refused_until_nonces_expire() {
    let policy = HmacPolicy {
        nonces_per_key: 2,
        ..HmacPolicy::default()
    };
    let f = fixture_with(Arc::new(MemoryNonceStore::new(1000)), policy).await;
    for _ in 0..2 {
        let s = signed(&f);
        f.service.verify_request(&s.view(), s.body()).await.unwrap();
    }
    let s = signed(&f);
    let wait = match f.service.verify_request(&s.view(), s.body()).await {
        Err(HmacError::OverQuota { retry_after_ms }) => retry_after_ms,
        other => panic!("{other:?}"),
    };
    // A nonce lives the skew window past `created`, and the quota frees a
    // bucket once it has wholly passed.
    let window_ms = policy.max_skew_secs * 1000;
    assert!((window_ms..=window_ms + 11_000).contains(&wait), "{wait}");
    f.clock.advance_millis(wait);
    assert_eq!(f.service.prune_nonces().await.unwrap(), 2);
    let s = signed(&f);
    f.service.verify_request(&s.view(), s.body()).await.unwrap();
}
