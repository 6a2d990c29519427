//! Request bodies held to a minimum rate, and response bodies that mark
//! their request as in flight until they end.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::{Bytes, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::activity::Busy;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client sent less than the minimum in a window it was waited for.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

/// A request body that fails with `BodyTooSlow` when, while the server is
/// waiting for it, fewer than `min` bytes arrive in `window`. Time the
/// server spends not reading (its own consumer is slow) is not held
/// against the client.
pub struct MinRate<B> {
    inner: B,
    min: u64,
    window: Duration,
    got: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> MinRate<B> {
    pub fn new(inner: B, min: u64, window: Duration) -> Self {
        Self {
            inner,
            min,
            window,
            got: 0,
            timer: None,
        }
    }
}

impl<B> hyper::body::Body for MinRate<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                this.got = this.got.saturating_add(len);
                // A window that ran out while nobody was reading says
                // nothing about the client: start a new one.
                let lapsed = this
                    .timer
                    .as_ref()
                    .is_some_and(|t| t.deadline() <= Instant::now());
                if this.got >= this.min || lapsed {
                    this.got = 0;
                    this.timer = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.timer = None;
                Poll::Ready(other.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let window = this.window;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyTooSlow.into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight (so the
/// connection is not idle) until it ends or is dropped.
pub struct Tracked {
    body: Body,
    busy: Option<Busy>,
}

impl Tracked {
    pub(super) fn new(body: Body, busy: Busy) -> Self {
        Self {
            body,
            busy: Some(busy),
        }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        if frame.is_none() || this.body.is_end_stream() {
            this.busy = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;
    use http_body_util::channel::Channel;

    #[tokio::test]
    async fn a_body_below_the_rate_is_cut_and_one_above_it_is_not() {
        let (mut tx, body) = Channel::<Bytes, std::convert::Infallible>::new(4);
        let mut slow = MinRate::new(body, 100, Duration::from_millis(200));
        let sender = tokio::spawn(async move {
            // 10 bytes every 300 ms: far below 100 per 200 ms.
            for _ in 0..50 {
                tx.send_data(Bytes::from(vec![0u8; 10])).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let mut cut = false;
        while let Some(frame) = slow.frame().await {
            if let Err(e) = frame {
                assert!(e.is::<BodyTooSlow>());
                cut = true;
                break;
            }
        }
        assert!(cut);
        sender.abort();

        let (mut tx, body) = Channel::<Bytes, std::convert::Infallible>::new(4);
        let fast = MinRate::new(body, 100, Duration::from_secs(5));
        tokio::spawn(async move {
            // 120 bytes every 50 ms: far more than 100 per 5 s.
            for _ in 0..5 {
                tx.send_data(Bytes::from(vec![0u8; 120])).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let all = fast.collect().await.unwrap().to_bytes();
        assert_eq!(all.len(), 600);
    }
}
