//! Test harness: runs one case against a fresh SQLite file, and against a
//! fresh PostgreSQL database when `KEYGATE_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::future::Future;

use keygate_core::KeyEnv;
use keygate_core::KeyId;
use keygate_core::apikey::{random_bytes, random_id};
use keygate_core::model::{
    AuditEntry, KeyRecord, Metadata, RateLimitSpec, Scope, SecretRecord, Tenant,
};
use keygate_store::{ConnectOptions, SqlStore, connect};
use sqlx::{AnyConnection, Connection};

/// What a case gets: the store, and the URL it was opened with.
pub struct Ctx {
    pub store: SqlStore,
    pub url: String,
}

pub async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keygate.db").display());
    let store = connect(&url, ConnectOptions::default()).await.unwrap();
    case(Ctx {
        store: store.clone(),
        url,
    })
    .await;
    store.close().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub async fn run_postgres<F, Fut>(case: F)
where
    F: FnOnce(Ctx) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var("KEYGATE_TEST_POSTGRES_URL") else {
        if std::env::var("KEYGATE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("KEYGATE_TEST_REQUIRE_SERVICES=1 but KEYGATE_TEST_POSTGRES_URL is not set");
        }
        eprintln!("skipping PostgreSQL case: KEYGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    sqlx::any::install_default_drivers();
    let mut raw = [0u8; 8];
    random_bytes(&mut raw).unwrap();
    let name = format!("kg_test_{}", hex(&raw));
    let mut admin = AnyConnection::connect(&admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = with_database(&admin_url, &name);
    let outcome = tokio::spawn(async move {
        let store = connect(&url, ConnectOptions::default()).await.unwrap();
        case(Ctx {
            store: store.clone(),
            url,
        })
        .await;
        store.close().await;
    })
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("case did not finish: {e}");
    }
}

/// Declares every case once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::run_postgres(super::$name).await;
                }
            )*
        }
    };
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
