//! What a store case gets: a store on a database of its own, on SQLite or
//! PostgreSQL (the database goes when the case ends), and statements and
//! counts read outside the store. The records are in `fixtures`.

use std::future::Future;

use keygate_core::model::{AuditFilter, PageRequest};
use keygate_core::store::AuditStore;
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
