//! Restart backoff as the kubelet does it: 10 s doubling to 5 min, forgotten after a container
//! ran 10 min.

use std::time::Duration;

/// Backoff settings (shrunk in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// A container that ran at least this long restarts without delay history.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// Delay before the restart that follows `consecutive` crashes (1 = the first crash).
    pub fn delay(&self, consecutive: u32) -> Duration {
        let exponent = consecutive.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << exponent).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_secs(10));
        assert_eq!(b.delay(2), Duration::from_secs(20));
        assert_eq!(b.delay(5), Duration::from_secs(160));
        assert_eq!(b.delay(6), Duration::from_secs(300));
        assert_eq!(b.delay(60), Duration::from_secs(300));
    }
}
