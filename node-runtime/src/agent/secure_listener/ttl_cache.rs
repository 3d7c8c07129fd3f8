//! The listener's answer caches (authentication and authorization): each answer kept for a
//! time of its own, bounded in size (past `MAX_CACHED` entries the cache starts over).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Past this many cached answers the cache starts over (bounded memory).
const MAX_CACHED: usize = 4096;

/// Answers `V` to questions `K`, each until its own deadline.
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new() -> Self {
        TtlCache {
            entries: Mutex::default(),
        }
    }

    /// The answer to `key`, if one is cached and still fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let (value, until) = entries.get(key)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    /// Keeps `value` as the answer to `key` for `ttl`.
    pub fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.lock();
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now() + ttl));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_lasts_its_own_time() {
        let cache = TtlCache::new();
        cache.put("yes", true, Duration::from_secs(120));
        cache.put("no", false, Duration::from_secs(30));
        assert_eq!(cache.get(&"yes"), Some(true));
        assert_eq!(cache.get(&"no"), Some(false));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(cache.get(&"yes"), Some(true));
        assert_eq!(cache.get(&"no"), None);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(cache.get(&"yes"), None);
    }
}
