//! Worker runtimes: one current-thread tokio runtime per thread, each
//! serving the connections the accept loop hands it.
//!
//! A connection, its requests and the upstream connection they reuse then
//! stay on one thread: no work stealing moves them, and no wake-up crosses
//! threads. The accept loop stays single and on the caller's runtime, so
//! the caps (`Admission`), the refusal 503 and the drain are decided in one
//! place exactly as without workers; the price is one cross-thread hand-off
//! per connection, not per request. (One socket per worker with
//! SO_REUSEPORT would save that hop but split the caps across sockets, and
//! the kernel would pick the worker by hash, not by load.)
//!
//! Each worker thread names the caller's runtime as its home for storage
//! (`keygate_core::home`): database and Redis connections are opened and
//! driven there, never on a worker, so nothing a worker registered outlives
//! the connections it served. The workers stop when `Workers` is dropped,
//! after the drain: what is still open on them then is cut, as the drain
//! would have cut it.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping these stops the workers.
    _stop: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `n` (at least one) workers whose storage calls run on the
    /// current runtime.
    pub fn start(n: usize, name: &str) -> io::Result<Self> {
        let home = Handle::current();
        let mut handles = Vec::with_capacity(n);
        let mut stop = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (tx, rx) = oneshot::channel::<()>();
            stop.push(tx);
            let home = home.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    let _home = keygate_core::home::enter(home);
                    // Runs the connections spawned on it until stopped;
                    // the runtime, and what is left on it, is dropped here,
                    // on its own thread.
                    let _ = runtime.block_on(rx);
                })?;
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs `task` on the next worker in turn.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        drop(self.handles[i].spawn(task));
    }
}

/// One per core the process may run on (`taskset` and cgroup quotas
/// count), when `configured` is 0.
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    #[tokio::test]
    async fn tasks_go_round_the_workers_each_on_its_own_thread() {
        let workers = Workers::start(3, "test-worker").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..6 {
            let tx = tx.clone();
            workers.spawn(async move {
                let _ = tx.send(std::thread::current().id());
            });
        }
        let mut threads = HashSet::new();
        for _ in 0..6 {
            threads.insert(rx.recv().await.unwrap());
        }
        assert_eq!(threads.len(), 3);
        assert!(!threads.contains(&std::thread::current().id()));
    }

    #[tokio::test]
    async fn dropping_the_workers_stops_their_threads() {
        let workers = Workers::start(1, "test-worker").unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        // Held by a task that never ends: dropped only with its runtime.
        workers.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        assert!(rx.await.is_err());
    }

    #[test]
    fn zero_is_one_per_core() {
        assert_eq!(count(5), 5);
        assert!(count(0) >= 1);
    }
}
