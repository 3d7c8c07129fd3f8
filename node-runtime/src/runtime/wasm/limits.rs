//! Resource limits for one guest: memory through a `ResourceLimiter`, CPU through epoch
//! deadlines that make the guest sleep in proportion to the time it ran.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{ResourceLimiter, UpdateDeadline};

use super::engine::EPOCH_TICK;

/// Observations shared between a running guest and the runtime.
#[derive(Default)]
pub struct Usage {
    /// Bytes of all linear memories and tables the guest holds.
    pub memory_bytes: AtomicU64,
    /// Epoch ticks during which the guest was running Wasm code.
    pub running_ticks: AtomicU64,
    /// Set when the guest wanted more memory than its limit.
    pub oom: AtomicBool,
    /// Set to stop the guest at its next epoch check.
    pub stop: AtomicBool,
}

/// Bytes wasmtime holds for each table element (a pointer's worth).
const TABLE_ELEMENT_BYTES: u64 = std::mem::size_of::<usize>() as u64;
/// Core instances one guest may create (a component is several; a module is one).
const MAX_INSTANCES: usize = 100;
/// Linear memories one guest may create, all of them counted against its limit.
const MAX_MEMORIES: usize = 32;
/// Tables one guest may create, all of them counted against its limit.
const MAX_TABLES: usize = 100;

/// Counts every linear memory and table of one guest's store against `limit` bytes and refuses
/// growth beyond it, trapping the guest (reported as OOMKilled). Also caps how many instances,
/// memories and tables the guest may create.
pub struct MemoryLimiter {
    limit: Option<u64>,
    usage: Arc<Usage>,
    /// Bytes of all memories and tables the store holds.
    total: u64,
}

impl MemoryLimiter {
    pub fn new(limit: Option<u64>, usage: Arc<Usage>) -> Self {
        MemoryLimiter {
            limit,
            usage,
            total: 0,
        }
    }

    /// Admits growth of one memory or table by `added` bytes if the store's total stays within
    /// the limit; `what` names it in the error.
    fn grow(&mut self, added: u64, what: &str) -> wasmtime::Result<bool> {
        let total = self.total.saturating_add(added);
        if let Some(limit) = self.limit {
            if total > limit {
                self.usage.oom.store(true, Ordering::SeqCst);
                return Err(wasmtime::format_err!(
                    "memory limit exceeded: growing {what} by {added} bytes takes the guest to \
                     {total} bytes, its limit is {limit}"
                ));
            }
        }
        self.total = total;
        self.usage.memory_bytes.store(total, Ordering::Relaxed);
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // Beyond the memory's own maximum: wasmtime fails it; nothing is allocated.
            return Ok(false);
        }
        self.grow(desired.saturating_sub(current) as u64, "a memory")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let added = (desired.saturating_sub(current) as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow(added, "a table")
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// What to do when the guest's epoch deadline passes: stop it if asked; otherwise yield to the
/// executor, sleeping long enough that its share of a core stays within `cpu_millis`.
pub fn on_deadline(usage: &Usage, cpu_millis: Option<u64>) -> wasmtime::Result<UpdateDeadline> {
    if usage.stop.load(Ordering::SeqCst) {
        return Err(wasmtime::format_err!("stopped by the runtime"));
    }
    usage.running_ticks.fetch_add(1, Ordering::Relaxed);
    match throttle(cpu_millis) {
        Some(pause) => Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::time::sleep(pause)),
        )),
        None => Ok(UpdateDeadline::Yield(1)),
    }
}

/// After one tick of running, the pause that keeps the guest at `cpu_millis` per 1000.
fn throttle(cpu_millis: Option<u64>) -> Option<Duration> {
    let millis = cpu_millis?.clamp(1, 1000);
    if millis >= 1000 {
        return None;
    }
    Some(EPOCH_TICK * ((1000 - millis) as u32) / (millis as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_keeps_the_share() {
        assert_eq!(throttle(None), None);
        assert_eq!(throttle(Some(1000)), None);
        assert_eq!(throttle(Some(2000)), None);
        assert_eq!(throttle(Some(500)), Some(EPOCH_TICK));
        assert_eq!(throttle(Some(100)), Some(EPOCH_TICK * 9));
    }

    #[test]
    fn memory_beyond_the_limit_is_refused() {
        let usage = Arc::new(Usage::default());
        let mut limiter = MemoryLimiter::new(Some(1 << 20), usage.clone());
        assert!(limiter.memory_growing(0, 65536, None).expect("within"));
        assert!(limiter.memory_growing(65536, 2 << 20, None).is_err());
        assert!(usage.oom.load(Ordering::SeqCst));
    }

    #[test]
    fn every_memory_and_table_counts_against_one_limit() {
        let usage = Arc::new(Usage::default());
        let mut limiter = MemoryLimiter::new(Some(1 << 20), usage.clone());
        assert!(limiter.memory_growing(0, 512 << 10, None).expect("first"));
        assert!(limiter.memory_growing(0, 256 << 10, None).expect("second"));
        // 32 Ki elements of a pointer each: 256 KiB, the rest of the limit.
        assert!(limiter.table_growing(0, 32 << 10, None).expect("table"));
        assert_eq!(usage.memory_bytes.load(Ordering::Relaxed), 1 << 20);
        assert!(!usage.oom.load(Ordering::SeqCst));
        assert!(limiter
            .table_growing(32 << 10, (32 << 10) + 1, None)
            .is_err());
        assert!(usage.oom.load(Ordering::SeqCst));
    }

    #[test]
    fn growth_past_a_declared_maximum_fails_without_counting() {
        let usage = Arc::new(Usage::default());
        let mut limiter = MemoryLimiter::new(Some(1 << 20), usage.clone());
        assert!(!limiter
            .memory_growing(0, 2 << 20, Some(65536))
            .expect("refused, not trapped"));
        assert!(!usage.oom.load(Ordering::SeqCst));
        assert!(limiter.memory_growing(0, 1 << 20, None).expect("all of it"));
    }
}
