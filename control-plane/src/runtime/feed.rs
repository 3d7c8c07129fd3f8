//! Feeding work queues from informers: which keys to reconcile when a cached object changes,
//! at start, on resync, and when notifications were lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::informer::{Change, Informer};
use super::queue::WorkQueue;
use crate::registry::typed;

/// How often every object of a controller is reconciled even without changes.
const RESYNC: Duration = Duration::from_secs(30);

/// Queues every key of `targets` when `source` changes in a way `relevant` accepts.
pub fn feed_all<S, T>(
    source: &Arc<Informer<S>>,
    queue: &WorkQueue,
    relevant: fn(&Change<S>) -> bool,
    targets: &Arc<Informer<T>>,
    shutdown: &CancellationToken,
) where
    S: typed::Object,
    T: typed::Object,
{
    let mut changes = source.subscribe();
    let (queue, targets, shutdown) = (queue.clone(), targets.clone(), shutdown.clone());
    tokio::spawn(async move {
        let queue_all = || targets.keys().into_iter().for_each(|k| queue.add(k));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(change) if relevant(&change) => queue_all(),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => queue_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}

/// Queues `to_key(obj)` for every change of `source`, and every key of `targets` at start,
/// on resync and when notifications were lost.
pub fn feed<S, T>(
    source: &Arc<Informer<S>>,
    queue: &WorkQueue,
    to_key: fn(&S) -> Option<String>,
    targets: &Arc<Informer<T>>,
    shutdown: &CancellationToken,
) where
    S: typed::Object,
    T: typed::Object,
{
    let mut changes = source.subscribe();
    let (queue, targets, shutdown) = (queue.clone(), targets.clone(), shutdown.clone());
    tokio::spawn(async move {
        targets.synced().await;
        let queue_all = || targets.keys().into_iter().for_each(|k| queue.add(k));
        queue_all();
        let mut resync = tokio::time::interval(RESYNC);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = resync.tick() => queue_all(),
                change = changes.recv() => match change {
                    Ok(change) => {
                        for obj in change.old.iter().chain(change.new.iter()) {
                            if let Some(key) = to_key(obj) {
                                queue.add(key);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => queue_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
}
