//! The wasmtime `Engine` every Wasm container shares, and its epoch clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel};

/// One epoch tick: the granularity of CPU throttling and of preemption.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine: async execution, epoch interruption (for CPU limits and stopping
/// guests), optimized code.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        // Small guests, many of them: keep each fiber's stack modest (it is reserved lazily).
        .async_stack_size(2 << 20)
        .max_wasm_stack(1 << 20);
    Engine::new(&config)
}

/// Advances the engine's epoch every `EPOCH_TICK` on a thread of its own, until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
