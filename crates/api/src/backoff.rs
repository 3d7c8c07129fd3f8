//! Exponential backoff as Kubernetes uses it (the kubelet's crash-loop backoff: 10 s doubling to
//! 5 min, forgotten after a container ran 10 min); pure, the caller keeps the count and the clock.

use std::time::Duration;

/// Delays that start at `initial` and double up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// After running (or succeeding) this long, the failure count starts again.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// The kubelet's restart backoff.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay before the retry that follows `attempt` consecutive failures (1 = the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(1 << exponent).min(self.max)
    }

    /// Whether a run of `ran` is long enough to forget the failures before it.
    pub fn resets(&self, ran: Duration) -> bool {
        ran >= self.reset_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_ten_seconds_to_five_minutes() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::from_secs(10));
        assert_eq!(b.delay(1), Duration::from_secs(10));
        assert_eq!(b.delay(2), Duration::from_secs(20));
        assert_eq!(b.delay(5), Duration::from_secs(160));
        assert_eq!(b.delay(6), Duration::from_secs(300));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_long_run_resets_the_count() {
        let b = Backoff::default();
        assert!(!b.resets(Duration::from_secs(599)));
        assert!(b.resets(Duration::from_secs(600)));
    }
}
