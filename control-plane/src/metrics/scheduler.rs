//! The scheduler's metrics, under kube-scheduler's names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::histogram::scheduler_buckets;

/// How an attempt ended: `scheduled`, `unschedulable` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub result: &'static str,
    pub profile: &'static str,
}

/// `active` (waiting for an attempt) or `unschedulable` (waiting for the cluster to change).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

/// The scheduler's families; cheap to clone.
#[derive(Clone, Debug)]
pub struct SchedulerMetrics {
    attempts: Family<AttemptLabels, Counter>,
    durations: Family<AttemptLabels, Histogram, fn() -> Histogram>,
    pending: Family<QueueLabels, Gauge>,
}

fn attempt_histogram() -> Histogram {
    Histogram::new(scheduler_buckets())
}

impl SchedulerMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> SchedulerMetrics {
        let metrics = SchedulerMetrics {
            attempts: Family::default(),
            durations: Family::new_with_constructor(attempt_histogram as fn() -> Histogram),
            pending: Family::default(),
        };
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem",
            metrics.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            metrics.durations.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'unschedulable' means number of pods in unschedulablePods",
            metrics.pending.clone(),
        );
        metrics
    }

    /// Counts one attempt of `profile` that ended in `result` after `seconds`.
    pub fn attempt(&self, profile: &'static str, result: &'static str, seconds: f64) {
        let labels = AttemptLabels { result, profile };
        self.attempts.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// Sets how many pods wait in the active and unschedulable queues.
    pub fn pending(&self, active: usize, unschedulable: usize) {
        for (queue, count) in [("active", active), ("unschedulable", unschedulable)] {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.pending
                .get_or_create(&QueueLabels { queue })
                .set(count);
        }
    }
}
