//! Where storage I/O runs when the gateway serves on worker runtimes.
//!
//! A connection to PostgreSQL or Redis is registered with the I/O driver of
//! the runtime that opened it, yet sits in a pool every runtime shares.
//! Opened on a gateway worker it would be driven only while that worker is
//! idle, and would die with it. So a worker thread names its home (the main
//! runtime, which opened the pools) and the store calls a request can make
//! go through `run`: on the main runtime, or on any thread without a home,
//! the call is awaited where it is; on a worker it is spawned at home and
//! its answer awaited. A cache hit calls no store and never leaves the
//! worker.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::runtime::Handle;

use crate::error::Error;
use crate::httpsig::{NonceStore, NonceUse, NonceVerdict};
use crate::model::RateLimitSpec;
use crate::ratelimit::{RateDecision, RateLimiter, Unavailable};

thread_local! {
    static HOME: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// This thread's home, until dropped (on the thread that entered it).
pub struct Entered(PhantomData<*const ()>);

/// Makes `home` the runtime this thread's store calls run on.
pub fn enter(home: Handle) -> Entered {
    HOME.with(|h| *h.borrow_mut() = Some(home));
    Entered(PhantomData)
}

impl Drop for Entered {
    fn drop(&mut self) {
        HOME.with(|h| *h.borrow_mut() = None);
    }
}

/// The home to spawn on, when this thread has one.
fn away() -> Option<Handle> {
    HOME.with(|h| h.borrow().clone())
}

/// Spawns `task` at home when this thread has one, else where it is: for a
/// store's own long-lived task (a writer), which must not live and die with
/// a gateway worker.
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match away() {
        Some(home) => home.spawn(task),
        None => tokio::spawn(task),
    }
}

/// Runs a store call at home (see the module). A home that is shutting
/// down answers a storage error, which the caller turns into a 503.
pub async fn run<F, T>(call: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    match try_run(call).await {
        Some(out) => out,
        None => Err(Error::Storage("the server is shutting down".into())),
    }
}

/// As `run` for a call that cannot fail: None when the home is shutting
/// down and the call never ran.
pub async fn try_run<F>(call: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Some(home) = away() else {
        return Some(call.await);
    };
    match home.spawn(call).await {
        Ok(out) => Some(out),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// A shared store whose every call runs at home: the Redis limiter and
/// nonce store, the database's nonce table. The in-process limiter needs
/// none, and is not wrapped.
pub struct AtHome<T: ?Sized>(pub Arc<T>);

#[async_trait]
impl RateLimiter for AtHome<dyn RateLimiter> {
    async fn check_burst(
        &self,
        key: &str,
        spec: RateLimitSpec,
        burst: u32,
        on_unavailable: Option<Unavailable>,
        now_ms: i64,
    ) -> RateDecision {
        let inner = self.0.clone();
        let owned = key.to_owned();
        let call = async move {
            inner
                .check_burst(&owned, spec, burst, on_unavailable, now_ms)
                .await
        };
        match try_run(call).await {
            Some(decision) => decision,
            // Stopping: decide here rather than not at all.
            None => {
                self.0
                    .check_burst(key, spec, burst, on_unavailable, now_ms)
                    .await
            }
        }
    }

    async fn refund(&self, key: &str, spec: RateLimitSpec, now_ms: i64) {
        let inner = self.0.clone();
        let key = key.to_owned();
        let _ = try_run(async move { inner.refund(&key, spec, now_ms).await }).await;
    }
}

#[async_trait]
impl NonceStore for AtHome<dyn NonceStore> {
    async fn record(&self, nonce: &NonceUse<'_>) -> Result<NonceVerdict, Error> {
        let inner = self.0.clone();
        let (key_id, value) = (nonce.key_id.to_owned(), nonce.nonce.to_owned());
        let NonceUse {
            expires_at_ms,
            created_ms,
            now_ms,
            per_key_limit,
            ..
        } = *nonce;
        run(async move {
            let nonce = NonceUse {
                key_id: &key_id,
                nonce: &value,
                expires_at_ms,
                created_ms,
                now_ms,
                per_key_limit,
            };
            inner.record(&nonce).await
        })
        .await
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, Error> {
        let inner = self.0.clone();
        run(async move { inner.prune(now_ms).await }).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::thread::ThreadId;

    /// The thread a future ran on.
    async fn where_run() -> Result<ThreadId, Error> {
        Ok(std::thread::current().id())
    }

    #[tokio::test]
    async fn without_a_home_a_call_runs_where_it_is() {
        let here = std::thread::current().id();
        assert_eq!(run(where_run()).await.unwrap(), here);
    }

    /// Runs `f` on a thread of its own with a current-thread runtime (a
    /// gateway worker) whose home is this test's runtime; its answer.
    async fn on_a_worker<T, F>(f: F) -> T
    where
        F: FnOnce(tokio::runtime::Runtime) -> T + Send + 'static,
        T: Send + 'static,
    {
        let home = Handle::current();
        let worker = std::thread::spawn(move || {
            let worker = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _home = enter(home);
            f(worker)
        });
        tokio::task::spawn_blocking(move || worker.join().unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn on_a_worker_a_call_runs_at_home() {
        let home_thread = std::thread::current().id();
        let (ran_on, worker_thread) = on_a_worker(|worker| {
            let ran_on = worker.block_on(run(where_run())).unwrap();
            (ran_on, std::thread::current().id())
        })
        .await;
        assert_eq!(ran_on, home_thread);
        assert_ne!(ran_on, worker_thread);
    }

    #[tokio::test]
    async fn a_task_spawned_from_a_worker_lives_at_home() {
        let home_thread = std::thread::current().id();
        let task = on_a_worker(|worker| {
            let entered = worker.enter();
            let task = spawn(where_run());
            drop(entered);
            // The worker is gone; the task was never its own.
            drop(worker);
            task
        })
        .await;
        assert_eq!(task.await.unwrap().unwrap(), home_thread);
    }
}
