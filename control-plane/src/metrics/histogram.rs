//! Bucket layouts of Kubernetes' histograms, and writing a snapshot taken elsewhere (the
//! store's atomic histograms) as a Prometheus histogram.

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use skiff_raft_store::HistogramSnapshot;

/// `apiserver_request_duration_seconds`' buckets (kube-apiserver's).
pub const REQUEST_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// The scheduler's attempt buckets: 1 ms doubling 15 times (kube-scheduler's).
pub fn scheduler_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15)
}

/// A work queue's wait and work buckets: 10 ns to 10 s by tens (client-go's).
pub fn queue_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(10e-9, 10.0, 10)
}

/// Writes `snapshot` as the histogram `name`.
pub fn encode_snapshot(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    snapshot: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    // The encoder sums the buckets itself: hand it each bucket's own count.
    let mut below = 0;
    let buckets: Vec<(f64, u64)> = snapshot
        .buckets
        .iter()
        .map(|(bound, cumulative)| {
            let own = cumulative - below;
            below = *cumulative;
            (*bound, own)
        })
        .collect();
    encoder
        .encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count, &buckets, None)
}
