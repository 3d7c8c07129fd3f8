//! Whether a connection has requests in flight: a request counts from its arrival until its
//! response body has been sent or dropped, so a long watch keeps its connection busy.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::sync::{watch, Notify};

/// The number of requests in flight on one connection.
#[derive(Clone)]
pub struct Activity(Arc<watch::Sender<usize>>);

/// Held while a request (and its response body) is in flight.
pub struct Busy(Arc<watch::Sender<usize>>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Activity {
    pub fn new() -> Self {
        Activity(Arc::new(watch::Sender::new(0)))
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }

    fn is_idle(&self) -> bool {
        *self.0.borrow() == 0
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut requests = self.0.subscribe();
        loop {
            let _ = requests.wait_for(|n| *n == 0).await;
            tokio::select! {
                () = tokio::time::sleep(timeout) => return,
                _ = requests.wait_for(|n| *n > 0) => {}
            }
        }
    }

    /// Resolves when `pressure` is signalled while no request is in flight.
    pub async fn idle_under(&self, pressure: &Notify) {
        loop {
            pressure.notified().await;
            if self.is_idle() {
                return;
            }
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done.
pub struct TrackedBody {
    pub body: Body,
    pub _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
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
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_requests_in_flight() {
        let activity = Activity::new();
        let busy = activity.busy();
        let idle = tokio::time::timeout(
            Duration::from_secs(600),
            activity.idle_for(Duration::from_secs(1)),
        )
        .await;
        assert!(idle.is_err(), "idle while a request was in flight");
        drop(busy);
        let start = tokio::time::Instant::now();
        activity.idle_for(Duration::from_secs(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
