//! What the store counts about itself for the server's `/metrics`: plain atomics, written on
//! the proposal and fsync paths without locks, read by whoever exports them (this crate knows
//! nothing of HTTP or of a metrics library).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of a proposal's latency buckets: 1 ms to about 8 s, doubling (the
/// buckets of etcd's disk histograms, which proposals follow).
pub const PROPOSAL_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192,
];
/// Upper bounds (seconds) of an fsync's buckets: etcd's `etcd_disk_wal_fsync_duration_seconds`.
pub const FSYNC_BUCKETS: [f64; 14] = PROPOSAL_BUCKETS;

/// A latency histogram of fixed buckets whose observations are a few relaxed atomic adds.
#[derive(Debug)]
pub struct LatencyHistogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

/// A histogram's state at one moment, as Prometheus writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// The sum of the observations, in seconds.
    pub sum: f64,
    /// How many observations there were.
    pub count: u64,
    /// Each bucket's upper bound and how many observations were at or below it (cumulative);
    /// the last bound is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// An empty histogram over `bounds` (ascending, in seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        LatencyHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = self.bounds.partition_point(|bound| *bound < seconds);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The cumulative buckets, count and sum now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.counts.len());
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        for (bound, count) in bounds.zip(self.counts.iter()) {
            total += count.load(Ordering::Relaxed);
            buckets.push((bound, total));
        }
        HistogramSnapshot {
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: total,
            buckets,
        }
    }
}

/// The store's counters; one per member, shared by its handles and its driver.
#[derive(Debug)]
pub struct StoreMetrics {
    /// How long txns took from `Store::txn` to their answer (committed and applied, or failed).
    pub proposal_seconds: LatencyHistogram,
    /// Txns that failed (no leader, timeout, fenced, stopped).
    pub proposals_failed: AtomicU64,
    /// Txns waiting for their answer now.
    pub proposals_pending: AtomicI64,
    /// How long each durable write of the Raft log and hard state took.
    pub wal_fsync_seconds: LatencyHistogram,
    /// How many times this member saw the leader change (to another member, or to one after
    /// none).
    pub leader_changes: AtomicU64,
}

impl StoreMetrics {
    /// Counts one txn as pending until the guard is dropped, however the txn ends (a caller
    /// that stops waiting included).
    pub(crate) fn pending(&self) -> Pending<'_> {
        self.proposals_pending.fetch_add(1, Ordering::Relaxed);
        Pending(&self.proposals_pending)
    }
}

/// A txn counted in `proposals_pending` while this lives.
pub(crate) struct Pending<'a>(&'a AtomicI64);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            proposal_seconds: LatencyHistogram::new(&PROPOSAL_BUCKETS),
            proposals_failed: AtomicU64::new(0),
            proposals_pending: AtomicI64::new(0),
            wal_fsync_seconds: LatencyHistogram::new(&FSYNC_BUCKETS),
            leader_changes: AtomicU64::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = LatencyHistogram::new(&[0.01, 0.1, 1.0]);
        histogram.observe(Duration::from_millis(10));
        histogram.observe(Duration::from_millis(50));
        histogram.observe(Duration::from_secs(5));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert!((snapshot.sum - 5.06).abs() < 1e-9, "{}", snapshot.sum);
        assert_eq!(
            snapshot.buckets,
            [(0.01, 1), (0.1, 2), (1.0, 2), (f64::INFINITY, 3)]
        );
    }
}
