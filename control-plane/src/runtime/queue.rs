//! A work queue keyed by object (client-go's workqueue): deduplicates keys, never hands the
//! same key to two workers at once, and supports delayed re-adds. An instrumented queue feeds
//! client-go's workqueue metrics (`crate::metrics::queue`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::queue::QueueSeries;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Keys waiting, with when they were queued.
    queue: VecDeque<(String, Instant)>,
    /// Keys waiting in `queue`.
    queued: HashSet<String>,
    /// Keys a worker is processing now, with when it took them.
    active: HashMap<String, Instant>,
    /// Keys added while active: re-queued when their worker is done.
    dirty: HashSet<String>,
}

/// Cheap to clone; all clones share one queue.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    ready: Arc<Notify>,
    metrics: Option<Arc<QueueSeries>>,
}

impl WorkQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue that counts its adds, depth and waits in `series`.
    pub fn instrumented(series: QueueSeries) -> Self {
        WorkQueue {
            metrics: Some(Arc::new(series)),
            ..Self::default()
        }
    }

    fn set_depth(&self, state: &State) {
        if let Some(metrics) = &self.metrics {
            metrics
                .depth
                .set(i64::try_from(state.queue.len()).unwrap_or(i64::MAX));
        }
    }

    /// Adds `key` unless it is already waiting.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        if let Some(metrics) = &self.metrics {
            metrics.adds.inc();
        }
        let mut state = self.state.lock().expect("queue lock");
        if state.active.contains_key(&key) {
            state.dirty.insert(key);
            return;
        }
        if state.queued.insert(key.clone()) {
            state.queue.push_back((key, Instant::now()));
            self.set_depth(&state);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Adds `key` after `delay`.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Waits for the next key and marks it active; pair with `done`.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("queue lock");
                if let Some((key, queued_at)) = state.queue.pop_front() {
                    state.queued.remove(&key);
                    let now = Instant::now();
                    state.active.insert(key.clone(), now);
                    self.set_depth(&state);
                    if let Some(metrics) = &self.metrics {
                        metrics
                            .queue_duration
                            .observe((now - queued_at).as_secs_f64());
                    }
                    if !state.queue.is_empty() {
                        self.ready.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Ends processing of `key`; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &str) {
        let mut state = self.state.lock().expect("queue lock");
        if let (Some(taken), Some(metrics)) = (state.active.remove(key), &self.metrics) {
            metrics.work_duration.observe(taken.elapsed().as_secs_f64());
        }
        if state.dirty.remove(key) && state.queued.insert(key.to_string()) {
            state.queue.push_back((key.to_string(), Instant::now()));
            self.set_depth(&state);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Number of keys waiting.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().expect("queue lock").queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deduplicates_and_defers_active_keys() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.next().await;
        assert_eq!(first, "a");
        q.add("a"); // while active: deferred, not handed out twice
        assert_eq!(q.next().await, "b");
        assert_eq!(q.len(), 0);
        q.done("a");
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits() {
        let q = WorkQueue::new();
        q.add_after("k", Duration::from_secs(10));
        tokio::task::yield_now().await;
        assert_eq!(q.len(), 0);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(q.len(), 1);
    }
}
