//! What a store case gets: a store on a database of its own, on SQLite or
//! PostgreSQL (the database goes when the case ends), and the records the
//! cases build their data from.

use std::future::Future;

use keygate_core::KeyEnv;
use keygate_core::KeyId;
use keygate_core::jwt::{SigningAlg, SigningKeyRecord};
use keygate_core::keys::apikey::{random_bytes, random_id};
use keygate_core::model::{
    AuditEntry, AuditFilter, KeyRecord, Metadata, PageRequest, RateLimitSpec, Scope, SecretRecord,
    Tenant,
};
use keygate_core::store::AuditStore;
use keygate_core::users::{UserId, UserRecord};
use keygate_store::{ConnectOptions, SqlStore, connect};
use keygate_test_support::{Backend, TestDatabase};
use sqlx::{AnyConnection, Connection};

/// What a case gets: the store, and the URL it was opened with. The
/// database lives as long as this does.
pub struct Ctx {
    pub store: SqlStore,
    pub url: String,
    db: Option<TestDatabase>,
}

/// A store on a fresh database, or None when `backend` is not available
/// here (the fixture of the bare `on_both_backends!`).
pub async fn fixture(backend: Backend) -> Option<Ctx> {
    let db = TestDatabase::create(backend).await?;
    let store = connect(&db.url, ConnectOptions::default()).await.unwrap();
    Some(Ctx {
        store,
        url: db.url.clone(),
        db: Some(db),
    })
}

/// Runs `case` on `backend`, keeping the database until it ends: a closure
/// `|ctx| async move { ctx.store... }` captures only the fields it uses and
/// would drop the rest of `ctx` (and the database with it) at once.
async fn run<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(mut ctx) = fixture(backend).await {
        let db = ctx.db.take();
        case(ctx).await;
        drop(db);
    }
}

/// Runs `case` on a fresh SQLite file.
pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    run(Backend::Sqlite, case).await;
}

/// Runs `case` on a fresh PostgreSQL database, when one is configured.
pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    run(Backend::Postgres, case).await;
}

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

/// Runs a statement outside the store, on its own connection.
pub async fn exec(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
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

/// How many entries the audit log holds.
pub async fn audit_len(s: &(impl AuditStore + ?Sized)) -> usize {
    let page = PageRequest {
        after: None,
        limit: 1000,
    };
    s.list_audit(&AuditFilter::default(), page)
        .await
        .unwrap()
        .len()
}
