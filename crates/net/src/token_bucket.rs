//! A token bucket on tokio's clock (client-go's `flowcontrol` rate limiter): `burst` tokens
//! at first, one more every `per_token`, never more than `burst`. Paused time drives it in
//! tests.

use std::time::Duration;

use tokio::time::Instant;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_token: Duration,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens (at least one), refilled one every `per_token`.
    pub fn new(per_token: Duration, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_token,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// A bucket refilled `qps` tokens a second; `None` when `qps` is 0 (no limit).
    pub fn per_second(qps: u32, burst: u32, now: Instant) -> Option<Self> {
        (qps > 0).then(|| Self::new(Duration::from_secs(1) / qps, burst, now))
    }

    fn refill(&mut self, now: Instant) {
        let earned =
            now.saturating_duration_since(self.at).as_secs_f64() / self.per_token.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.burst);
        self.at = now.max(self.at);
    }

    /// Takes a token if one is there at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled to its burst by `now` (it holds nothing worth keeping).
    pub fn is_full(&self, now: Instant) -> bool {
        let mut refilled = self.clone();
        refilled.refill(now);
        refilled.tokens >= refilled.burst
    }

    /// Waits until a token is there and takes it.
    pub async fn take(&mut self) {
        let now = Instant::now();
        if self.try_take(now) {
            return;
        }
        let wait = self.per_token.mul_f64(1.0 - self.tokens);
        tokio::time::sleep_until(now + wait).await;
        self.refill(now + wait);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_period() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Duration::from_secs(2), 3, start);
        assert_eq!((0..10).filter(|_| bucket.try_take(start)).count(), 3);
        assert!(!bucket.try_take(start + Duration::from_secs(1)));
        assert!(bucket.try_take(start + Duration::from_secs(2)));
        assert!(!bucket.is_full(start + Duration::from_secs(6)));
        assert!(bucket.is_full(start + Duration::from_secs(8)));
        let later = start + Duration::from_secs(100);
        assert_eq!(
            (0..10).filter(|_| bucket.try_take(later)).count(),
            3,
            "refilled to the burst, not beyond"
        );
    }

    #[test]
    fn no_limit_at_zero_qps() {
        assert!(TokenBucket::per_second(0, 10, Instant::now()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn take_waits_for_the_next_token() {
        let start = Instant::now();
        let mut bucket = TokenBucket::per_second(50, 100, start).expect("a limit");
        for _ in 0..100 {
            bucket.take().await;
        }
        assert_eq!(Instant::now(), start, "the burst does not wait");
        for _ in 0..50 {
            bucket.take().await;
        }
        let waited = Instant::now() - start;
        assert!(
            waited >= Duration::from_millis(999) && waited <= Duration::from_millis(1001),
            "50 more at 50/s take a second: {waited:?}"
        );
    }
}
