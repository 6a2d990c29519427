//! Sealed HMAC signing secrets: upsert with audit, refused for revoked or
//! unknown keys without writing anything. Both backends.

use crate::common::Ctx;
use crate::fixtures::{self, NOW, audit, insert};
use keygate_core::Error;
use keygate_core::model::{AuditFilter, PageRequest};
use keygate_core::store::{AuditStore, HmacSecretRecord, HmacSecretStore, KeyStore};

on_both_backends!(
    secrets_are_replaced_and_audited,
    revoked_and_unknown_keys_get_none
);

fn page() -> PageRequest {
    PageRequest {
        after: None,
        limit: 100,
    }
}

async fn secrets_are_replaced_and_audited(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, Some("acme"), "alice", NOW).await;
    assert!(s.get_hmac_secret(&k.id).await.unwrap().is_none());
    let first = HmacSecretRecord {
        key_id: k.id.clone(),
        sealed: vec![1, 2, 3, 0, 255],
        created_at: NOW,
    };
    s.put_hmac_secret(&first, &audit("key.signing_secret_created", &k, NOW))
        .await
        .unwrap();
    assert_eq!(s.get_hmac_secret(&k.id).await.unwrap(), Some(first));
    let second = HmacSecretRecord {
        key_id: k.id.clone(),
        sealed: vec![9; 60],
        created_at: NOW + 5,
    };
    s.put_hmac_secret(&second, &audit("key.signing_secret_created", &k, NOW + 5))
        .await
        .unwrap();
    assert_eq!(s.get_hmac_secret(&k.id).await.unwrap(), Some(second));
    let filter = AuditFilter {
        action: Some("key.signing_secret_created".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        s.list_audit(&filter, page())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry)
            .collect::<Vec<_>>()
            .len(),
        2
    );
}

async fn revoked_and_unknown_keys_get_none(ctx: Ctx) {
    let s = &ctx.store;
    let (k, _) = insert(s, None, "bob", NOW).await;
    s.revoke_key(&k.id, NOW, &audit("key.revoked", &k, NOW))
        .await
        .unwrap();
    let record = HmacSecretRecord {
        key_id: k.id.clone(),
        sealed: vec![7; 40],
        created_at: NOW,
    };
    let err = s
        .put_hmac_secret(&record, &audit("key.signing_secret_created", &k, NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    let ghost = fixtures::key(None, "ghost", NOW);
    let err = s
        .put_hmac_secret(
            &HmacSecretRecord {
                key_id: ghost.id.clone(),
                ..record
            },
            &audit("key.signing_secret_created", &ghost, NOW),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound("key")), "{err:?}");
    assert!(s.get_hmac_secret(&k.id).await.unwrap().is_none());
    let filter = AuditFilter {
        action: Some("key.signing_secret_created".into()),
        ..AuditFilter::default()
    };
    assert!(
        s.list_audit(&filter, page())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry)
            .collect::<Vec<_>>()
            .is_empty()
    );
}
