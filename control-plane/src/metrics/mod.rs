//! What `GET /metrics` serves, in Prometheus' text format and under Kubernetes' and etcd's
//! metric names where they have one (so stock dashboards work): the API server's requests
//! (`api`), the store's Raft state (`store`), the scheduler (`scheduler`), the controllers'
//! work queues (`queue`) and the process itself (`process`).
//!
//! One `Metrics` per server (several servers may share a process in tests): the API layer,
//! the scheduler and the controllers hold clones of its handles.

pub mod api;
mod histogram;
mod process;
pub mod queue;
pub mod scheduler;
mod store;

use prometheus_client::registry::Registry;
use skiff_raft_store::Store;

pub use api::ApiMetrics;
pub use queue::QueueMetrics;
pub use scheduler::SchedulerMetrics;

/// The `Content-Type` of what `encode` writes (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A server's metrics: the registry `/metrics` encodes and the handles that feed it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The API server's request counters.
    pub api: ApiMetrics,
    /// The scheduler's attempts and queue.
    pub scheduler: SchedulerMetrics,
    /// The controllers' work queues.
    pub queues: QueueMetrics,
}

impl Metrics {
    /// Registers every metric of a server whose store is `store`.
    pub fn new(store: &Store) -> Metrics {
        let mut registry = Registry::default();
        let api = ApiMetrics::register(&mut registry);
        let scheduler = SchedulerMetrics::register(&mut registry);
        let queues = QueueMetrics::register(&mut registry);
        registry.register_collector(Box::new(store::StoreCollector::new(store)));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            api,
            scheduler,
            queues,
        }
    }

    /// Every metric now, in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}
