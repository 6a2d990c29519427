//! `on_both_backends!`: every storage case runs on SQLite and PostgreSQL.

/// Declares each case once per backend, as `sqlite::name` and
/// `postgres::name`: a `#[tokio::test]` that gets the case's fixture from
/// `spawn` (`async fn(Backend) -> Option<T>`; None skips) and calls
/// `name(fixture)`. Without `spawn =`, the fixture comes from
/// `crate::fixture`, which each suite defines at its root.
///
/// ```ignore
/// on_both_backends!(insert_then_get, revoke_is_idempotent);
/// on_both_backends!(spawn = super::spawn_capped; refuses_past_the_cap);
/// ```
// `crate::fixture` is the calling suite's, on purpose (clippy's lint assumes
// a macro means its own crate).
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! on_both_backends {
    (spawn = $spawn:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = $spawn($crate::Backend::Sqlite).await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = $spawn($crate::Backend::Postgres).await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(spawn = crate::fixture; $($name),*);
    };
}
