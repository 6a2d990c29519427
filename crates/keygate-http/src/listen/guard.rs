//! A connection and its watchdog in one future, the watchdog polled only
//! when something woke it.
//!
//! `select!` polls every branch whenever the task wakes, and a proxied
//! request wakes its connection's task several times: polling the idle
//! timer and the drain signal each time cost ~1k instructions per request
//! for futures that almost never have anything to say. Here the watchdog
//! gets a waker of its own that marks it woken before waking the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

/// Which finished first.
pub enum First<M, W> {
    Main(M),
    Watchdog(W),
}

/// Wakes the task that polls the pair, and marks the watchdog woken.
struct Flag {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = self.task.lock().as_ref() {
            task.wake_by_ref();
        }
    }
}

pub struct Guarded<M, W> {
    main: Pin<Box<M>>,
    watchdog: Pin<Box<W>>,
    flag: Arc<Flag>,
    waker: Waker,
}

impl<M: Future, W: Future> Guarded<M, W> {
    pub fn new(main: Pin<Box<M>>, watchdog: W) -> Self {
        let flag = Arc::new(Flag {
            // Polled once at first, so it can arm its timers.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Self {
            main,
            watchdog: Box::pin(watchdog),
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// The connection itself, to shut it down once the watchdog has spoken.
    pub fn into_main(self) -> Pin<Box<M>> {
        self.main
    }
}

impl<M: Future, W: Future> Future for Guarded<M, W> {
    type Output = First<M::Output, W::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(out) = this.main.as_mut().poll(cx) {
            return Poll::Ready(First::Main(out));
        }
        {
            let mut task = this.flag.task.lock();
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        // After the waker is in place: a wake from here on is not lost.
        if this.flag.woken.swap(false, Ordering::AcqRel) {
            let mut own = Context::from_waker(&this.waker);
            if let Poll::Ready(out) = this.watchdog.as_mut().poll(&mut own) {
                return Poll::Ready(First::Watchdog(out));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A future that counts its polls and never ends.
    struct Counted(Arc<AtomicUsize>);
    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_is_polled_when_woken_and_not_when_the_main_future_is() {
        let polls = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        // The main future wakes on each message, the watchdog on its timer.
        let main = Box::pin(async move { while rx.recv().await.is_some() {} });
        let watchdog = {
            let polls = polls.clone();
            async move {
                let mut counted = Counted(polls);
                tokio::select! {
                    () = &mut counted => unreachable!(),
                    () = tokio::time::sleep(Duration::from_secs(5)) => 7,
                }
            }
        };
        let guarded = Guarded::new(main, watchdog);
        let task = tokio::spawn(guarded);
        for _ in 0..50 {
            tx.send(()).unwrap();
            tokio::task::yield_now().await;
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "polled only when first armed"
        );
        match task.await.unwrap() {
            First::Watchdog(n) => assert_eq!(n, 7),
            First::Main(()) => unreachable!("the main future was still running"),
        }
    }

    #[tokio::test]
    async fn the_main_future_ending_ends_the_pair() {
        let guarded = Guarded::new(Box::pin(async {}), std::future::pending::<()>());
        assert!(matches!(guarded.await, First::Main(())));
    }
}
