//! A PostgreSQL database per test, on the server `KEYGATE_TEST_POSTGRES_URL`
//! names, so tests run in parallel and leave nothing behind.

use sqlx::Connection;

use crate::{random_hex, skip_unless_required};

/// A database made for one test and dropped (`WITH (FORCE)`, so open
/// connections do not keep it) when this value drops, panic or not.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// None (after saying why) when no PostgreSQL is configured; a failure
    /// instead when services are required.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("KEYGATE_TEST_POSTGRES_URL") else {
            skip_unless_required("KEYGATE_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("kg_test_{}", random_hex(8));
        let mut conn = connect(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url)
        .await
        .expect("connect to KEYGATE_TEST_POSTGRES_URL")
}

/// `url` with its database name replaced by `name`, the query kept.
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

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop is not async and may run inside the test's runtime, which
        // cannot be blocked on: a short-lived runtime on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test database {} was not dropped", self.name);
        }
    }
}
