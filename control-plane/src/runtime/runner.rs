//! Runs a reconciler over a work queue (kube-rs's `Controller`): level-triggered, with
//! per-key error backoff; a 409 conflict means "requeue soon", not an error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::backoff::Backoff;
use tokio_util::sync::CancellationToken;

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

/// Retry delays of a key whose reconciles keep failing: 50 ms doubling to 30 s, forgotten at
/// the first success.
const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(50),
    max: Duration::from_secs(30),
    reset_after: Duration::ZERO,
};
/// Delay before retrying a key whose write hit a 409 conflict.
const CONFLICT_RETRY: Duration = Duration::from_millis(10);
/// Conflicts in a row retried after `CONFLICT_RETRY`; a key that keeps conflicting (a name
/// held by an object the cache will never show as ours) backs off like a failure after that.
const QUICK_CONFLICTS: u32 = 5;

/// A key's unbroken run of failed reconciles, forgotten at its first success.
#[derive(Default)]
struct Streak {
    conflicts: u32,
    failures: u32,
}

/// Spawns `workers` tasks that reconcile keys from `queue` until `shutdown` is cancelled.
pub fn spawn<R: Reconciler>(
    reconciler: Arc<R>,
    queue: WorkQueue,
    workers: usize,
    shutdown: CancellationToken,
) {
    let streaks: Arc<Mutex<HashMap<String, Streak>>> = Arc::default();
    for _ in 0..workers {
        let (reconciler, queue, streaks) = (reconciler.clone(), queue.clone(), streaks.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    key = queue.next() => key,
                    _ = shutdown.cancelled() => return,
                };
                let outcome = reconciler.reconcile(&key).await;
                queue.done(&key);
                // Reconciles may complete without ever waiting (cache reads, refused writes):
                // let the informers and the API run between them.
                tokio::task::yield_now().await;
                if outcome.is_ok() {
                    streaks.lock().expect("streaks lock").remove(&key);
                }
                match outcome {
                    Ok(Action::Requeue(after)) => queue.add_after(key, after),
                    Ok(_) => {}
                    // A stale cache: try again once the informer has had a moment to catch up.
                    Err(err @ ApiError::Conflict { .. }) => {
                        let conflicts = {
                            let mut streaks = streaks.lock().expect("streaks lock");
                            let streak = streaks.entry(key.clone()).or_default();
                            streak.conflicts = streak.conflicts.saturating_add(1);
                            streak.conflicts
                        };
                        let delay = match conflicts.checked_sub(QUICK_CONFLICTS) {
                            None | Some(0) => CONFLICT_RETRY,
                            Some(over) => {
                                let delay = BACKOFF.delay(over);
                                tracing::warn!(controller = reconciler.name(), %key, %err, ?delay, "reconcile keeps conflicting");
                                delay
                            }
                        };
                        queue.add_after(key, delay);
                    }
                    Err(err) => {
                        let attempt = {
                            let mut streaks = streaks.lock().expect("streaks lock");
                            let streak = streaks.entry(key.clone()).or_default();
                            streak.failures = streak.failures.saturating_add(1);
                            streak.failures
                        };
                        let delay = BACKOFF.delay(attempt);
                        tracing::warn!(controller = reconciler.name(), %key, %err, ?delay, "reconcile failed");
                        queue.add_after(key, delay);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(BACKOFF.delay(1), Duration::from_millis(50));
        assert_eq!(BACKOFF.delay(2), Duration::from_millis(100));
        assert_eq!(BACKOFF.delay(40), Duration::from_secs(30));
    }

    /// Fails its first `failures` reconciles (a 409 first, then errors) and records when each ran.
    struct Flaky {
        failures: usize,
        runs: Mutex<Vec<tokio::time::Instant>>,
    }

    #[async_trait]
    impl Reconciler for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }

        async fn reconcile(&self, _key: &str) -> Result<Action, ApiError> {
            let mut runs = self.runs.lock().expect("runs");
            runs.push(tokio::time::Instant::now());
            match runs.len() {
                1 => Err(ApiError::Conflict {
                    resource: "things".into(),
                    name: "k".into(),
                    message: "stale".into(),
                }),
                n if n <= self.failures => Err(ApiError::Internal("down".into())),
                _ => Ok(Action::await_change()),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_keys_are_retried_after_the_backoff_and_conflicts_at_once() {
        let flaky = Arc::new(Flaky {
            failures: 4,
            runs: Mutex::default(),
        });
        let queue = WorkQueue::new();
        let shutdown = CancellationToken::new();
        spawn(flaky.clone(), queue.clone(), 1, shutdown);
        queue.add("k");
        tokio::time::sleep(Duration::from_secs(60)).await;
        let runs = flaky.runs.lock().expect("runs").clone();
        let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            gaps,
            [
                CONFLICT_RETRY,
                BACKOFF.delay(1),
                BACKOFF.delay(2),
                BACKOFF.delay(3)
            ],
            "a conflict, three failures, then success and no more runs"
        );
    }

    /// Always answers 409 and records when it ran.
    struct Conflicting {
        runs: Mutex<Vec<tokio::time::Instant>>,
    }

    #[async_trait]
    impl Reconciler for Conflicting {
        fn name(&self) -> &'static str {
            "conflicting"
        }

        async fn reconcile(&self, _key: &str) -> Result<Action, ApiError> {
            self.runs
                .lock()
                .expect("runs")
                .push(tokio::time::Instant::now());
            Err(ApiError::Conflict {
                resource: "replicasets".into(),
                name: "web-abc".into(),
                message: "exists".into(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_keeps_conflicting_backs_off_instead_of_spinning() {
        let conflicting = Arc::new(Conflicting {
            runs: Mutex::default(),
        });
        let queue = WorkQueue::new();
        spawn(
            conflicting.clone(),
            queue.clone(),
            1,
            CancellationToken::new(),
        );
        queue.add("k");
        tokio::time::sleep(Duration::from_secs(60)).await;
        let runs = conflicting.runs.lock().expect("runs").clone();
        let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(
            gaps[..5],
            [CONFLICT_RETRY; 5],
            "the first conflicts retry at once"
        );
        assert_eq!(
            gaps[5..8],
            [BACKOFF.delay(1), BACKOFF.delay(2), BACKOFF.delay(3)]
        );
        // Without the back-off: a run every 10 ms, 6,000 in the minute.
        assert!(runs.len() < 20, "{} runs in a minute", runs.len());
    }
}
