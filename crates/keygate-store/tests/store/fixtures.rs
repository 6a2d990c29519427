//! The records the cases build their data from: keys with their secrets,
//! users, audit entries, signing keys and HMAC secrets, all dated from
//! `NOW` unless a case passes its own time.

use keygate_core::KeyEnv;
use keygate_core::KeyId;
use keygate_core::jwt::{SigningAlg, SigningKeyRecord};
use keygate_core::keys::apikey::{random_bytes, random_id};
use keygate_core::model::{
    AuditEntry, KeyRecord, Metadata, RateLimitSpec, Scope, SecretRecord, Tenant,
};
use keygate_core::store::HmacSecretRecord;
use keygate_core::users::{PhcHash, UserId, UserRecord};
use keygate_store::SqlStore;

/// Unix seconds: the time most cases are set at.
pub const NOW: i64 = 1_700_000_000;

pub fn random_hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    random_bytes(&mut h).unwrap();
    h
}

pub fn secret_for(id: &KeyId, created_at: i64) -> SecretRecord {
    SecretRecord {
        hash: random_hash(),
        pepper_version: 3,
        key_id: id.clone(),
        created_at,
        expires_at: None,
    }
}

pub fn key(tenant: Option<&str>, owner: &str, now: i64) -> KeyRecord {
    let mut metadata = Metadata::new();
    metadata.insert("team".into(), serde_json::json!("payments"));
    metadata.insert("n".into(), serde_json::json!([1, 2, {"x": null}]));
    KeyRecord {
        id: KeyId::generate().unwrap(),
        name: format!("key of {owner} ünïcode"),
        owner: owner.to_owned(),
        tenant: tenant.map(|t| Tenant::parse(t).unwrap()),
        scopes: vec![
            Scope::parse("orders:read").unwrap(),
            Scope::parse("admin").unwrap(),
        ],
        metadata,
        env: KeyEnv::Test,
        prefix: "kg_test_AbCd".to_owned(),
        created_at: now,
        updated_at: now,
        expires_at: Some(now + 86_400),
        revoked_at: None,
        last_used_at: None,
        rate_limit: Some(RateLimitSpec {
            limit: 100,
            period_seconds: 60,
        }),
        remaining: None,
        version: 1,
    }
}

pub fn audit(action: &str, key: &KeyRecord, at: i64) -> AuditEntry {
    AuditEntry {
        id: random_id("aud_", 16).unwrap(),
        at,
        action: action.to_owned(),
        actor: "key_adminadminadmin0".to_owned(),
        target: Some(key.id.to_string()),
        tenant: key.tenant.as_ref().map(|t| t.as_str().to_owned()),
        request_id: Some("req-1".to_owned()),
        detail: serde_json::json!({ "name": key.name }),
        seq: 0,
    }
}

/// Inserts a fresh key with one secret; returns both.
pub async fn insert(
    store: &SqlStore,
    tenant: Option<&str>,
    owner: &str,
    now: i64,
) -> (KeyRecord, SecretRecord) {
    use keygate_core::store::KeyStore;
    let k = key(tenant, owner, now);
    let s = secret_for(&k.id, now);
    store
        .insert_key(&k, &s, &audit("key.created", &k, now), None)
        .await
        .unwrap();
    (k, s)
}

/// A user with no roles, tenant or claims, under a random name.
pub fn user(now: i64) -> UserRecord {
    UserRecord {
        id: UserId::generate().unwrap(),
        username: random_id("user", 8).unwrap(),
        roles: vec![],
        tenant: None,
        claims: keygate_core::users::Claims::new(),
        disabled: false,
        sessions_cutoff_ms: 0,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

pub fn signing_key(kid: &str, generation: i64, now: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        generation,
        alg: SigningAlg::HS256,
        public_jwk: String::new(),
        sealed_private: vec![7; 48],
        created_at: now,
        activate_at: now,
    }
}

/// An audit entry about user `u`.
pub fn user_audit(action: &str, u: &UserRecord, at: i64) -> AuditEntry {
    AuditEntry {
        id: random_id("evt_", 20).unwrap(),
        at,
        action: action.to_owned(),
        actor: "test".to_owned(),
        target: Some(u.id.to_string()),
        tenant: u.tenant.as_ref().map(|t| t.as_str().to_owned()),
        request_id: None,
        detail: serde_json::json!({}),
        seq: 0,
    }
}

/// A stored password hash in the PHC form; no password matches it.
pub fn fake_hash(tag: &str) -> PhcHash {
    PhcHash::from_stored(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${tag}"))
}

/// A sealed HMAC secret for `key_id` (the bytes are not a real seal: the
/// store keeps them as given).
pub fn hmac_secret(key_id: &KeyId, now: i64) -> HmacSecretRecord {
    HmacSecretRecord {
        key_id: key_id.clone(),
        sealed: vec![1; 40],
        created_at: now,
    }
}
