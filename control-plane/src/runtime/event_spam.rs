//! client-go's event spam filter (`EventSourceObjectSpamFilter`): each source may record a
//! burst of 25 events about one object, then one more every 5 minutes; the rest are dropped.
//! A ReplicaSet creating 5,000 pods so records 25 `SuccessfulCreate` events, not 5,000 writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use skiff_net::token_bucket::TokenBucket;
use tokio::time::Instant;

/// Events one source may record about one object at once (client-go's `defaultSpamBurst`).
const BURST: u32 = 25;
/// One more event allowed per this long (client-go's `defaultSpamQPS`, 1/300).
const REFILL_EVERY: Duration = Duration::from_secs(300);
/// Objects remembered before those with a full bucket are forgotten (client-go keeps an LRU
/// of 4,096).
const REMEMBERED: usize = 4096;

/// Token buckets per object, for one event source.
#[derive(Debug, Default)]
pub struct SpamFilter {
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl SpamFilter {
    /// Whether an event about `object` (its kind, namespace, name and uid) may be recorded at
    /// `now`; takes a token if so.
    pub fn allow(&self, object: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().expect("event spam filter lock");
        if buckets.len() >= REMEMBERED && !buckets.contains_key(object) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        buckets
            .entry(object.to_string())
            .or_insert_with(|| TokenBucket::new(REFILL_EVERY, BURST, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_25_per_object_then_one_every_5_minutes() {
        let filter = SpamFilter::default();
        let start = Instant::now();
        let allowed = (0..100).filter(|_| filter.allow("rs-a", start)).count();
        assert_eq!(allowed, 25, "the burst");
        assert!(
            filter.allow("rs-b", start),
            "another object has its own bucket"
        );
        assert!(!filter.allow("rs-a", start + Duration::from_secs(299)));
        assert!(filter.allow("rs-a", start + Duration::from_secs(300)));
        assert!(!filter.allow("rs-a", start + Duration::from_secs(301)));
        let later = start + Duration::from_secs(300 * 30);
        let allowed = (0..100).filter(|_| filter.allow("rs-a", later)).count();
        assert_eq!(allowed, 25, "refilled to the burst, not beyond");
    }

    #[test]
    fn full_buckets_are_forgotten_when_too_many_objects_are_remembered() {
        let filter = SpamFilter::default();
        let start = Instant::now();
        for i in 0..REMEMBERED {
            assert!(filter.allow(&format!("pod-{i}"), start));
        }
        let later = start + REFILL_EVERY;
        assert!(filter.allow("one-more", later));
        assert_eq!(filter.buckets.lock().expect("lock").len(), 1);
    }
}
