//! Whether a connection has requests in flight: a request counts from its arrival until its
//! response body has been sent or dropped, so a long watch keeps its connection busy. A new
//! connection that has not sent its first request yet is given a moment before it counts as
//! idle, so shedding idle connections never cuts a client between connect and request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// How long a new connection that has served no request yet is spared from shedding.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The number of requests in flight on one connection, and whether it has served any.
#[derive(Clone)]
pub struct Activity {
    requests: Arc<watch::Sender<usize>>,
    opened: Instant,
    served: Arc<AtomicBool>,
}

/// Held while a request (and its response body) is in flight.
pub struct Busy(Arc<watch::Sender<usize>>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Activity {
    /// The activity of a connection accepted now.
    pub fn new() -> Self {
        Activity {
            requests: Arc::new(watch::Sender::new(0)),
            opened: Instant::now(),
            served: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.served.store(true, Ordering::Relaxed);
        self.requests.send_modify(|n| *n += 1);
        Busy(self.requests.clone())
    }

    /// No request in flight, and either one was served or the first is overdue.
    fn is_idle(&self) -> bool {
        *self.requests.borrow() == 0
            && (self.served.load(Ordering::Relaxed) || self.opened.elapsed() >= FIRST_REQUEST_GRACE)
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut requests = self.requests.subscribe();
        loop {
            let _ = requests.wait_for(|n| *n == 0).await;
            tokio::select! {
                () = tokio::time::sleep(timeout) => return,
                _ = requests.wait_for(|n| *n > 0) => {}
            }
        }
    }

    /// Resolves when `pressure` is signalled while the connection is idle.
    pub async fn idle_under(&self, pressure: &Notify) {
        loop {
            pressure.notified().await;
            if self.is_idle() {
                return;
            }
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_is_spared_until_its_first_request_is_overdue() {
        let pressure = Notify::new();
        let fresh = Activity::new();
        pressure.notify_one();
        let shed =
            tokio::time::timeout(Duration::from_millis(500), fresh.idle_under(&pressure)).await;
        assert!(shed.is_err(), "shed before it could send its first request");
        tokio::time::advance(FIRST_REQUEST_GRACE).await;
        pressure.notify_one();
        fresh.idle_under(&pressure).await;

        let served = Activity::new();
        drop(served.busy());
        pressure.notify_one();
        served.idle_under(&pressure).await;
    }
}
