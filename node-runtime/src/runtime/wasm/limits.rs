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
    /// Bytes of linear memory (and tables) the guest holds.
    pub memory_bytes: AtomicU64,
    /// Epoch ticks during which the guest was running Wasm code.
    pub running_ticks: AtomicU64,
    /// Set when the guest wanted more memory than its limit.
    pub oom: AtomicBool,
    /// Set to stop the guest at its next epoch check.
    pub stop: AtomicBool,
}

/// Refuses memory growth beyond `limit` bytes, trapping the guest (reported as OOMKilled).
pub struct MemoryLimiter {
    pub limit: Option<u64>,
    pub usage: Arc<Usage>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if let Some(limit) = self.limit {
            if desired as u64 > limit {
                self.usage.oom.store(true, Ordering::SeqCst);
                return Err(wasmtime::format_err!(
                    "memory limit exceeded: the guest asked for {desired} bytes, its limit is {limit}"
                ));
            }
        }
        self.usage
            .memory_bytes
            .store(desired as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
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
        let mut limiter = MemoryLimiter {
            limit: Some(1 << 20),
            usage: usage.clone(),
        };
        assert!(limiter.memory_growing(0, 65536, None).expect("within"));
        assert!(limiter.memory_growing(65536, 2 << 20, None).is_err());
        assert!(usage.oom.load(Ordering::SeqCst));
    }
}
