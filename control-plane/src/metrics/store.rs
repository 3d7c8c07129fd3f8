//! The store's Raft state and counters, read at each scrape (etcd's names where it has one).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use skiff_raft_store::{Store, StoreMetrics};

use super::histogram::encode_snapshot;

/// Reads the member's status and `StoreMetrics` when scraped.
pub struct StoreCollector {
    store: Store,
    metrics: Arc<StoreMetrics>,
}

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCollector")
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl StoreCollector {
    pub fn new(store: &Store) -> StoreCollector {
        StoreCollector {
            store: store.clone(),
            metrics: store.metrics(),
        }
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// A Raft index or term as a gauge value.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let status = self.store.status().borrow().clone();
        let e = &mut encoder;
        let leads = status.role == "Leader";
        gauge(
            e,
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not",
            i64::from(status.leader != 0),
        )?;
        gauge(
            e,
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise",
            i64::from(leads),
        )?;
        counter(
            e,
            "etcd_server_leader_changes_seen",
            "The number of leader changes seen",
            self.metrics.leader_changes.load(Relaxed),
        )?;
        gauge(
            e,
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed (the Raft commit index)",
            int(status.commit),
        )?;
        gauge(
            e,
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied (the Raft applied index)",
            int(status.applied),
        )?;
        gauge(
            e,
            "etcd_server_proposals_pending",
            "The current number of pending proposals to commit",
            self.metrics.proposals_pending.load(Relaxed),
        )?;
        counter(
            e,
            "etcd_server_proposals_failed",
            "The total number of failed proposals seen",
            self.metrics.proposals_failed.load(Relaxed),
        )?;
        gauge(
            e,
            "skiff_store_raft_term",
            "The Raft term this member is in",
            int(status.term),
        )?;
        gauge(
            e,
            "skiff_store_revision",
            "The store's latest applied revision (objects' resourceVersion)",
            int(self.store.revision()),
        )?;
        encode_snapshot(
            e,
            "skiff_store_proposal_duration_seconds",
            "Time from proposing a txn to its answer (committed and applied, or failed)",
            &self.metrics.proposal_seconds.snapshot(),
        )?;
        encode_snapshot(
            e,
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by the Raft log",
            &self.metrics.wal_fsync_seconds.snapshot(),
        )
    }
}
