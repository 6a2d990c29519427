//! Keys and their secrets: insert, read, update, rotate, revoke.
//! Each case runs on SQLite and, when configured, PostgreSQL.

use crate::common::Ctx;
use crate::fixtures::{self, NOW, audit, insert, random_hash, secret_for};
use keygate_core::Error;
use keygate_core::model::{AuditFilter, PageRequest};
use keygate_core::store::{AuditStore, KeyCap, KeyStore, Store, UpdateOutcome};

on_both_backends!(
    insert_get_and_find_by_hash,
    insert_failure_writes_nothing,
    update_is_guarded_by_version,
    rotate_with_grace_keeps_old_secrets_until_expiry,
    rotate_without_grace_deletes_old_secrets,
    revoke_is_idempotent,
    the_tenant_cap_counts_live_keys_only,
);

async fn insert_get_and_find_by_hash(ctx: Ctx) {
    let s = &ctx.store;
    s.ping().await.unwrap();
    assert!(matches!(s.backend(), "sqlite" | "postgres"));
    let (mut k, secret) = insert(s, Some("acme"), "alice", NOW).await;
    assert_eq!(s.get_key(&k.id).await.unwrap().as_ref(), Some(&k));

    let (found_secret, found_key) = s.find_by_hash(&secret.hash).await.unwrap().unwrap();
    assert_eq!(found_secret, secret);
    assert_eq!(found_key, k);
    assert!(s.find_by_hash(&random_hash()).await.unwrap().is_none());
    assert!(
        s.get_key(&keygate_core::KeyId::generate().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.secret_hashes(&k.id).await.unwrap(), vec![secret.hash]);

    // A key with no tenant, no limits and credits round-trips too.
    let mut other = fixtures::key(None, "bob", NOW);
    other.rate_limit = None;
    other.expires_at = None;
    other.remaining = Some(5);
    other.metadata.clear();
    let other_secret = secret_for(&other.id, NOW);
    s.insert_key(
        &other,
        &other_secret,
        &audit("key.created", &other, NOW),
        None,
    )
    .await
    .unwrap();
    assert_eq!(s.get_key(&other.id).await.unwrap(), Some(other.clone()));
    assert_eq!(s.count_keys().await.unwrap(), 2);

    let entries = s
        .list_audit(
            &AuditFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.seq > 0 && e.action == "key.created")
    );

    // A secret that belongs to another key is refused before any write.
    k.id = keygate_core::KeyId::generate().unwrap();
    let err = s
        .insert_key(&k, &secret, &audit("key.created", &k, NOW), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
}

async fn insert_failure_writes_nothing(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "alice", NOW).await;
    // Same id again: a unique violation is a storage error, and the
    // transaction leaves neither the secret nor the audit entry behind.
    let again = secret_for(&k.id, NOW);
    let err = s
        .insert_key(&k, &again, &audit("key.created", &k, NOW), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(s.count_keys().await.unwrap(), 1);
    assert!(s.find_by_hash(&again.hash).await.unwrap().is_none());
    let entries = s
        .list_audit(
            &AuditFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    assert_eq!(entries.len(), 1);
}

async fn update_is_guarded_by_version(ctx: Ctx) {
    let s = &ctx.store;
    let (k, first) = insert(s, Some("acme"), "alice", NOW).await;
    let mut next = k.clone();
    next.name = "renamed".into();
    next.scopes = vec![keygate_core::model::Scope::parse("orders:write").unwrap()];
    next.metadata.insert("new".into(), serde_json::json!(true));
    next.expires_at = None;
    next.rate_limit = None;
    next.remaining = Some(99); // not written: set_remaining is false
    next.updated_at = NOW + 5;
    next.version = 2;
    let outcome = s
        .update_key(&next, false, &audit("key.updated", &k, NOW + 5))
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Updated(vec![first.hash]));
    let stored = s.get_key(&k.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        keygate_core::model::KeyRecord {
            remaining: None,
            ..next.clone()
        }
    );

    // The same version again is stale, and writes no audit entry.
    let again = s
        .update_key(&next, false, &audit("key.updated", &k, NOW + 6))
        .await
        .unwrap();
    assert_eq!(again, UpdateOutcome::Stale);
    let mut vanished = next.clone();
    vanished.id = keygate_core::KeyId::generate().unwrap();
    assert_eq!(
        s.update_key(&vanished, false, &audit("key.updated", &k, NOW))
            .await
            .unwrap(),
        UpdateOutcome::Stale
    );

    let mut third = stored.clone();
    third.remaining = Some(7);
    third.version = 3;
    assert_eq!(
        s.update_key(&third, true, &audit("key.updated", &k, NOW + 7))
            .await
            .unwrap(),
        UpdateOutcome::Updated(vec![first.hash])
    );
    assert_eq!(s.get_key(&k.id).await.unwrap().unwrap().remaining, Some(7));
    third.remaining = None;
    third.version = 4;
    assert_eq!(
        s.update_key(&third, true, &audit("key.updated", &k, NOW + 8))
            .await
            .unwrap(),
        UpdateOutcome::Updated(vec![first.hash])
    );
    assert_eq!(s.get_key(&k.id).await.unwrap().unwrap().remaining, None);

    let filter = AuditFilter {
        action: Some("key.updated".into()),
        ..Default::default()
    };
    let updates = s
        .list_audit(
            &filter,
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>();
    assert_eq!(updates.len(), 3);
}

async fn rotate_with_grace_keeps_old_secrets_until_expiry(ctx: Ctx) {
    let s = &ctx.store;
    let (k, a) = insert(s, None, "alice", NOW).await;
    let b = secret_for(&k.id, NOW + 10);
    let (rotated, old) = s
        .rotate_secret(
            &k.id,
            &b,
            "kg_live_Rot8",
            Some(NOW + 100),
            &audit("key.rotated", &k, NOW + 10),
        )
        .await
        .unwrap();
    assert_eq!(old, vec![a.hash]);
    assert_eq!(rotated.prefix, "kg_live_Rot8");
    assert_eq!(rotated.updated_at, NOW + 10);
    assert_eq!(
        s.find_by_hash(&a.hash).await.unwrap().unwrap().0.expires_at,
        Some(NOW + 100)
    );
    assert_eq!(
        s.find_by_hash(&b.hash).await.unwrap().unwrap().0.expires_at,
        None
    );
    assert_eq!(
        s.get_key(&k.id).await.unwrap().unwrap().updated_at,
        NOW + 10
    );

    // A later, longer grace never extends a secret that expires sooner.
    let c = secret_for(&k.id, NOW + 20);
    let (_, old) = s
        .rotate_secret(
            &k.id,
            &c,
            "kg_live_Rot8",
            Some(NOW + 1000),
            &audit("key.rotated", &k, NOW + 20),
        )
        .await
        .unwrap();
    assert_eq!(old, vec![a.hash, b.hash]);
    assert_eq!(
        s.find_by_hash(&a.hash).await.unwrap().unwrap().0.expires_at,
        Some(NOW + 100)
    );
    assert_eq!(
        s.find_by_hash(&b.hash).await.unwrap().unwrap().0.expires_at,
        Some(NOW + 1000)
    );
    assert_eq!(
        s.find_by_hash(&c.hash).await.unwrap().unwrap().0.expires_at,
        None
    );
    assert_eq!(s.secret_hashes(&k.id).await.unwrap().len(), 3);

    let missing = keygate_core::KeyId::generate().unwrap();
    let err = s
        .rotate_secret(
            &missing,
            &secret_for(&missing, NOW),
            "kg_live_Rot8",
            None,
            &audit("key.rotated", &k, NOW),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("key")), "{err:?}");
    let filter = AuditFilter {
        action: Some("key.rotated".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list_audit(
            &filter,
            PageRequest {
                after: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>()
        .len(),
        2
    );
}

async fn rotate_without_grace_deletes_old_secrets(ctx: Ctx) {
    let s = &ctx.store;
    let (k, a) = insert(s, None, "alice", NOW).await;
    let b = secret_for(&k.id, NOW + 10);
    s.rotate_secret(
        &k.id,
        &b,
        "kg_live_Rot8",
        Some(NOW + 100),
        &audit("key.rotated", &k, NOW + 10),
    )
    .await
    .unwrap();
    let c = secret_for(&k.id, NOW + 20);
    let (_, old) = s
        .rotate_secret(
            &k.id,
            &c,
            "kg_live_Rot8",
            None,
            &audit("key.rotated", &k, NOW + 20),
        )
        .await
        .unwrap();
    assert_eq!(old, vec![a.hash, b.hash]);
    assert!(s.find_by_hash(&a.hash).await.unwrap().is_none());
    assert!(s.find_by_hash(&b.hash).await.unwrap().is_none());
    assert_eq!(s.secret_hashes(&k.id).await.unwrap(), vec![c.hash]);
}

async fn revoke_is_idempotent(ctx: Ctx) {
    let s = &ctx.store;
    let (k, a) = insert(s, None, "alice", NOW).await;
    let (returned, hashes) = s
        .revoke_key(&k.id, NOW + 10, &audit("key.revoked", &k, NOW + 10))
        .await
        .unwrap();
    assert_eq!(hashes, vec![a.hash]);
    let first = s.get_key(&k.id).await.unwrap().unwrap();
    assert_eq!(returned, first, "the record read inside the transaction");
    assert_eq!(first.revoked_at, Some(NOW + 10));
    assert_eq!(first.version, 2);
    s.revoke_key(&k.id, NOW + 20, &audit("key.revoked", &k, NOW + 20))
        .await
        .unwrap();
    let second = s.get_key(&k.id).await.unwrap().unwrap();
    assert_eq!(second, first, "the first revocation is kept");
    // An update prepared before the revocation is now stale.
    let mut late = k.clone();
    late.version = 2;
    assert_eq!(
        s.update_key(&late, false, &audit("key.updated", &k, NOW))
            .await
            .unwrap(),
        UpdateOutcome::Stale
    );

    // A revoked key never gets a new secret.
    let err = s
        .rotate_secret(
            &k.id,
            &secret_for(&k.id, NOW + 30),
            "kg_live_Rot8",
            None,
            &audit("key.rotated", &k, NOW + 30),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    assert_eq!(s.secret_hashes(&k.id).await.unwrap(), vec![a.hash]);

    let missing = keygate_core::KeyId::generate().unwrap();
    let err = s
        .revoke_key(&missing, NOW, &audit("key.revoked", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("key")), "{err:?}");
    let filter = AuditFilter {
        action: Some("key.revoked".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list_audit(
            &filter,
            PageRequest {
                after: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect::<Vec<_>>()
        .len(),
        2
    );
}

/// Revoked and expired keys do not count; keys without a tenant are a
/// bucket of their own; a refusal writes nothing.
async fn the_tenant_cap_counts_live_keys_only(ctx: Ctx) {
    let s = &ctx.store;
    let cap = Some(KeyCap {
        max_live: 2,
        now: NOW,
    });
    let put = async |tenant: Option<&str>, expires_at: Option<i64>| {
        let mut k = fixtures::key(tenant, "o", NOW - 10);
        k.expires_at = expires_at;
        let secret = secret_for(&k.id, NOW - 10);
        let done = s
            .insert_key(&k, &secret, &audit("key.created", &k, NOW), cap)
            .await;
        (k, done)
    };
    put(Some("acme"), Some(NOW)).await.1.unwrap(); // expired at NOW
    let (revoked, done) = put(Some("acme"), None).await;
    done.unwrap();
    s.revoke_key(&revoked.id, NOW - 1, &audit("key.revoked", &revoked, NOW))
        .await
        .unwrap();
    put(Some("acme"), Some(NOW + 60)).await.1.unwrap();
    put(Some("acme"), None).await.1.unwrap();
    let before = s.count_keys().await.unwrap();
    let (refused, done) = put(Some("acme"), None).await;
    assert!(matches!(done, Err(Error::QuotaExceeded(_))), "{done:?}");
    assert!(s.get_key(&refused.id).await.unwrap().is_none());
    assert_eq!(s.count_keys().await.unwrap(), before);
    put(None, None).await.1.unwrap();
    put(None, None).await.1.unwrap();
    let (_, done) = put(None, None).await;
    assert!(matches!(done, Err(Error::QuotaExceeded(_))), "{done:?}");
}
