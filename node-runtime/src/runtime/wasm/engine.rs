//! The wasmtime `Engine`s Wasm containers share (one for programs that run once, one with the
//! pooling allocator for wasi:http handlers instantiated per request), and their epoch clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// One epoch tick: the granularity of CPU throttling and of preemption.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Component instances the pool of the request engine holds at once: how many requests all
/// wasi:http handlers of the node serve concurrently (one more fails with 500).
const POOLED_COMPONENTS: u32 = 100;

/// Builds the engine: async execution, epoch interruption (for CPU limits and stopping
/// guests), optimized code, and linear memories laid out for density: each memory is one
/// read-write mapping and one reserved (inaccessible) mapping, so a pod costs the process
/// about four memory mappings (with its fiber stack and that stack's guard page) of the
/// `vm.max_map_count` it shares with the agent's threads.
///
/// The on-demand allocator, not the pooling one: a pool reserves every slot when the engine
/// is made and guards every stack slot up front (two mappings each, used or not), with one
/// slot size for all pods; on demand, an idle node holds nothing and each pod only what it
/// uses.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = base_config();
    config
        // A guard region before each memory is one more mapping per pod; the one after it
        // (inside the 4 GiB reservation) is what lets compiled code skip bounds checks.
        .guard_before_linear_memory(false)
        // Copy-on-write images map a guest's data segments from a memfd between two
        // anonymous parts of its memory: two more mappings per pod, for a few KiB of shared
        // pages. Copying the data segments at instantiation costs those few KiB instead.
        .memory_init_cow(false);
    Engine::new(&config)
}

/// Builds the engine for wasi:http handlers: as [`new_engine`], with the pooling allocator
/// (as `wasmtime serve` uses), so that instantiating a handler for each request reuses
/// memory slots instead of mapping fresh memory. The pool's virtual address space is reserved
/// when the engine is made, so the runtime makes it only for the first handler.
pub fn new_request_engine() -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOLED_COMPONENTS)
        .total_core_instances(POOLED_COMPONENTS * 10)
        .total_memories(POOLED_COMPONENTS * 2)
        .total_tables(POOLED_COMPONENTS * 4)
        .total_stacks(POOLED_COMPONENTS);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

fn base_config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        // Small guests, many of them: keep each fiber's stack modest (it is reserved lazily).
        .async_stack_size(2 << 20)
        .max_wasm_stack(1 << 20);
    config
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
