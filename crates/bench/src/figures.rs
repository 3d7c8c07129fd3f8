//! Turning measured durations into the figures a benchmark prints, and driving a load whose
//! figures they are.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;

/// A duration in milliseconds, one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The `p`th percentile of `sorted` (nearest rank); zero when empty.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(sorted.len() - 1);
    sorted[index]
}

/// One operation's throughput and latencies under a load.
#[derive(Clone, Copy)]
pub struct Throughput {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0}/s  p50 {:>8}  p99 {:>8}",
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

/// Runs `op(0..count)` with `clients` in flight, starting no more once `limit` (if any) has
/// passed; returns how many ran and their figures.
pub async fn load<F, Fut>(
    count: usize,
    clients: usize,
    limit: Option<Duration>,
    op: F,
) -> anyhow::Result<(usize, Throughput)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..count)
        .take_while(|_| std::future::ready(limit.is_none_or(|limit| started.elapsed() < limit)))
        .map(|i| {
            let op = op(i);
            async move {
                let at = Instant::now();
                op.await.map(|()| at.elapsed())
            }
        })
        .buffer_unordered(clients.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = started.elapsed();
    latencies.sort();
    let figures = Throughput {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
    };
    Ok((latencies.len(), figures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
