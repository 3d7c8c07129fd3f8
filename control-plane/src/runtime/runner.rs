//! Runs a reconciler over a work queue (kube-rs's `Controller`): level-triggered, with
//! per-key error backoff; a 409 conflict means "requeue soon", not an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::queue::WorkQueue;
use crate::error::ApiError;

/// What to do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long even if nothing changes.
    Requeue(Duration),
    /// Reconcile again only when a watched object changes.
    AwaitChange,
}

impl Action {
    pub fn requeue(after: Duration) -> Self {
        Action::Requeue(after)
    }

    pub fn await_change() -> Self {
        Action::AwaitChange
    }
}

/// One controller's logic for one object key.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// Controller name for logs.
    fn name(&self) -> &'static str;
    async fn reconcile(&self, key: &str) -> Result<Action, ApiError>;
}

const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Delay before retrying a key whose write hit a 409 conflict.
const CONFLICT_RETRY: Duration = Duration::from_millis(10);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Spawns `workers` tasks that reconcile keys from `queue` until `shutdown` flips to true.
pub fn spawn<R: Reconciler>(
    reconciler: Arc<R>,
    queue: WorkQueue,
    workers: usize,
    shutdown: watch::Receiver<bool>,
) {
    let failures: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    for _ in 0..workers {
        let (reconciler, queue, failures) = (reconciler.clone(), queue.clone(), failures.clone());
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    key = queue.next() => key,
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                };
                let outcome = reconciler.reconcile(&key).await;
                queue.done(&key);
                // Reconciles may complete without ever waiting (cache reads, refused writes):
                // let the informers and the API run between them.
                tokio::task::yield_now().await;
                match outcome {
                    Ok(action) => {
                        failures.lock().expect("failures lock").remove(&key);
                        if let Action::Requeue(after) = action {
                            queue.add_after(key, after);
                        }
                    }
                    // A stale cache: try again once the informer has had a moment to catch up.
                    Err(ApiError::Conflict { .. }) => queue.add_after(key, CONFLICT_RETRY),
                    Err(err) => {
                        let attempt = {
                            let mut failures = failures.lock().expect("failures lock");
                            let n = failures.entry(key.clone()).or_insert(0);
                            *n = n.saturating_add(1);
                            *n
                        };
                        let delay = backoff(attempt);
                        tracing::warn!(controller = reconciler.name(), %key, %err, ?delay, "reconcile failed");
                        queue.add_after(key, delay);
                    }
                }
            }
        });
    }
}

/// Exponential backoff for the `attempt`-th consecutive failure.
fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), BACKOFF_BASE);
        assert_eq!(backoff(2), BACKOFF_BASE * 2);
        assert_eq!(backoff(40), BACKOFF_CAP);
    }
}
