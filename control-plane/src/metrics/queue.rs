//! The controllers' work queue metrics, under client-go's workqueue names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::histogram::queue_buckets;
use crate::runtime::queue::WorkQueue;

/// The queue a series is about.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub name: &'static str,
}

type HistogramFamily = Family<QueueLabels, Histogram, fn() -> Histogram>;

fn queue_histogram() -> Histogram {
    Histogram::new(queue_buckets())
}

/// The work queue families; cheap to clone.
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    depth: Family<QueueLabels, Gauge>,
    adds: Family<QueueLabels, Counter>,
    queue_duration: HistogramFamily,
    work_duration: HistogramFamily,
}

/// One queue's series, held by the queue.
#[derive(Clone, Debug)]
pub struct QueueSeries {
    /// `workqueue_depth`: keys waiting.
    pub depth: Gauge,
    /// `workqueue_adds_total`: keys added (deduplicated adds included, as client-go counts).
    pub adds: Counter,
    /// `workqueue_queue_duration_seconds`: how long keys waited before a worker took them.
    pub queue_duration: Histogram,
    /// `workqueue_work_duration_seconds`: how long workers held keys.
    pub work_duration: Histogram,
}

impl QueueMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> QueueMetrics {
        let constructor = queue_histogram as fn() -> Histogram;
        let metrics = QueueMetrics {
            depth: Family::default(),
            adds: Family::default(),
            queue_duration: Family::new_with_constructor(constructor),
            work_duration: Family::new_with_constructor(constructor),
        };
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            metrics.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            metrics.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            metrics.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            metrics.work_duration.clone(),
        );
        metrics
    }

    /// A new work queue named `name` whose series these are.
    pub fn queue(&self, name: &'static str) -> WorkQueue {
        let labels = QueueLabels { name };
        WorkQueue::instrumented(QueueSeries {
            depth: self.depth.get_or_create_owned(&labels),
            adds: self.adds.get_or_create_owned(&labels),
            queue_duration: self.queue_duration.get_or_create_owned(&labels),
            work_duration: self.work_duration.get_or_create_owned(&labels),
        })
    }
}
