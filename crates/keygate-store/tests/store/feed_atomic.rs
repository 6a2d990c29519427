//! The feed entry is part of the write, method by method: when the append
//! fails (here the next seq is already taken by a planted row), the whole
//! write is rolled back with it: no domain change, no audit entry, no seq
//! consumed. Both backends.

use crate::common::{Ctx, audit_len, exec};
use crate::fixtures::{
    self, NOW, audit, fake_hash, hmac_secret, insert, secret_for, signing_key, user,
};
use keygate_core::Error;
use keygate_core::feed::FeedStore;
use keygate_core::sessions::model::BlockedJti;
use keygate_core::store::{
    HmacSecretStore, KeyStore, SessionStore, SigningKeyStore, UpdateOutcome, UserStore,
};

on_both_backends!(
    insert_key,
    bulk_insert_keys,
    update_key,
    rotate_secret,
    revoke_key,
    put_hmac_secret,
    insert_user,
    update_user,
    block_jti,
    insert_signing_key,
    delete_signing_keys,
);

/// Takes the next seq with a row of our own, so the next append fails.
/// Answers the head and the audit log's length, to compare afterwards.
async fn plant(ctx: &Ctx) -> (i64, usize) {
    let head = ctx.store.feed_head().await.unwrap();
    exec(
        &ctx.url,
        &format!(
            "INSERT INTO invalidations (seq, at_ms, kind, subject, extra) \
             VALUES ({}, 0, 'signing_keys.changed', '', '')",
            head + 1
        ),
    )
    .await;
    (head, audit_len(&ctx.store).await)
}

/// The write failed as a storage error and left no trace.
async fn nothing_written<T: std::fmt::Debug>(
    ctx: &Ctx,
    before: (i64, usize),
    result: Result<T, Error>,
) {
    assert!(matches!(result, Err(Error::Storage(_))), "{result:?}");
    assert_eq!(ctx.store.feed_head().await.unwrap(), before.0);
    assert_eq!(audit_len(&ctx.store).await, before.1);
}

async fn insert_key(ctx: Ctx) {
    let s = &ctx.store;
    let before = plant(&ctx).await;
    let k = fixtures::key(None, "alice", NOW);
    let secret = secret_for(&k.id, NOW);
    let result = s
        .insert_key(&k, &secret, &audit("key.created", &k, NOW), None)
        .await;
    nothing_written(&ctx, before, result).await;
    assert!(s.get_key(&k.id).await.unwrap().is_none());
}

async fn bulk_insert_keys(ctx: Ctx) {
    let s = &ctx.store;
    let before = plant(&ctx).await;
    let k = fixtures::key(None, "alice", NOW);
    let secret = secret_for(&k.id, NOW);
    let result = s.bulk_insert_keys(&[(k.clone(), secret)]).await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.count_keys().await.unwrap(), 0);
}

async fn update_key(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "alice", NOW).await;
    let before = plant(&ctx).await;
    let mut next = k.clone();
    next.name = "renamed".into();
    next.version += 1;
    let result = s
        .update_key(&next, false, &audit("key.updated", &k, NOW))
        .await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.get_key(&k.id).await.unwrap().unwrap(), k);
    // And once the seq is free again, the same update goes through.
    exec(&ctx.url, "DELETE FROM invalidations WHERE at_ms = 0").await;
    let outcome = s
        .update_key(&next, false, &audit("key.updated", &k, NOW))
        .await
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::Updated(_)));
}

async fn rotate_secret(ctx: Ctx) {
    let s = &ctx.store;
    let (k, first) = insert(s, None, "alice", NOW).await;
    let before = plant(&ctx).await;
    let second = secret_for(&k.id, NOW + 1);
    let result = s
        .rotate_secret(&k.id, &second, "p", None, &audit("key.rotated", &k, NOW))
        .await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.secret_hashes(&k.id).await.unwrap(), vec![first.hash]);
}

async fn revoke_key(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "alice", NOW).await;
    let before = plant(&ctx).await;
    let result = s
        .revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
        .await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.get_key(&k.id).await.unwrap().unwrap().revoked_at, None);
}

async fn put_hmac_secret(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "alice", NOW).await;
    let before = plant(&ctx).await;
    let record = hmac_secret(&k.id, NOW);
    let result = s
        .put_hmac_secret(&record, &audit("key.signing_secret_created", &k, NOW))
        .await;
    nothing_written(&ctx, before, result).await;
    assert!(s.get_hmac_secret(&k.id).await.unwrap().is_none());
}

fn any_audit() -> keygate_core::model::AuditEntry {
    audit("user.changed", &fixtures::key(None, "x", NOW), NOW)
}

async fn insert_user(ctx: Ctx) {
    let s = &ctx.store;
    let before = plant(&ctx).await;
    let u = user(NOW);
    let result = s.insert_user(&u, &fake_hash("x"), &any_audit()).await;
    nothing_written(&ctx, before, result).await;
    assert!(s.get_user(&u.id).await.unwrap().is_none());
}

async fn update_user(ctx: Ctx) {
    let s = &ctx.store;
    let u = user(NOW);
    s.insert_user(&u, &fake_hash("x"), &any_audit())
        .await
        .unwrap();
    let before = plant(&ctx).await;
    let mut next = u.clone();
    next.sessions_cutoff_ms = NOW * 1000;
    next.disabled = true;
    next.version += 1;
    let result = s.update_user(&next, None, &any_audit()).await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.get_user(&u.id).await.unwrap().unwrap(), u);
}

async fn block_jti(ctx: Ctx) {
    let s = &ctx.store;
    let before = plant(&ctx).await;
    let entry = BlockedJti {
        seq: 0,
        jti: "jti-1".into(),
        expires_at: NOW + 900,
        added_at_ms: NOW * 1000,
    };
    let result = s.block_jti(&entry, &any_audit()).await;
    nothing_written(&ctx, before, result).await;
    assert!(s.blocked_jtis(0, 0, 0, 10).await.unwrap().is_empty());
}

async fn insert_signing_key(ctx: Ctx) {
    let s = &ctx.store;
    let before = plant(&ctx).await;
    let result = s
        .insert_signing_key(&signing_key("k1", 1, NOW), &any_audit())
        .await;
    nothing_written(&ctx, before, result).await;
    assert!(s.list_signing_keys().await.unwrap().is_empty());
}

async fn delete_signing_keys(ctx: Ctx) {
    let s = &ctx.store;
    assert!(
        s.insert_signing_key(&signing_key("k1", 1, NOW), &any_audit())
            .await
            .unwrap()
    );
    let before = plant(&ctx).await;
    let result = s.delete_signing_keys(&["k1".into()]).await;
    nothing_written(&ctx, before, result).await;
    assert_eq!(s.list_signing_keys().await.unwrap().len(), 1);
}
