//! The agent process's memory mappings against `vm.max_map_count`. Wasm guests run in the
//! agent's process, each with mappings of its own (its linear memory and fiber stack); when the
//! process reaches the kernel's limit, `mmap` fails, and so does spawning a thread: Rust's
//! runtime then aborts the whole process ("failed to set up alternative stack guard page").
//! Admission therefore refuses a pod (`OutOfmappings`) while a reserve for the agent's own
//! threads and buffers is still free, and a Wasm node's default `--max-pods` is what fits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::admission::Rejection;

/// Mappings one idle Wasm pod adds to the process, with room to spare: its linear memory is
/// a read-write and a reserved mapping, its fiber stack a stack and a guard page (four; the
/// bench counts them, `skiff bench density`).
pub const MAPPINGS_PER_POD: u64 = 6;
/// Mappings kept free for the agent itself: each thread it spawns takes four (its stack, the
/// stack's guard, the signal stack and its guard), and the blocking pool grows to hundreds.
pub const RESERVED_MAPPINGS: u64 = 4096;
/// Memory a Wasm node offers each pod at least, when sizing its default `--max-pods`.
pub const WASM_POD_FLOOR_BYTES: u64 = 1 << 20;
/// How long a count of `/proc/self/maps` stands before admission counts again (reading it
/// costs milliseconds at tens of thousands of mappings); in between, each admitted pod counts
/// as [`MAPPINGS_PER_POD`].
const RECOUNT_AFTER: Duration = Duration::from_secs(1);

/// The kernel's `vm.max_map_count` (65,530 by default).
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many mappings this process holds now.
pub fn mapped() -> Option<u64> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// The default `--max-pods` of a node whose pods are Wasm guests: as many as its memory
/// offers [`WASM_POD_FLOOR_BYTES`] each and its mapping budget holds, at least Kubernetes'
/// 110.
pub fn wasm_max_pods(memory_bytes: u64, max_map_count: Option<u64>) -> u32 {
    let by_memory = memory_bytes / WASM_POD_FLOOR_BYTES;
    let by_mappings = max_map_count.map_or(u64::MAX, |limit| {
        limit.saturating_sub(RESERVED_MAPPINGS) / MAPPINGS_PER_POD
    });
    by_memory.min(by_mappings).clamp(110, u32::MAX as u64) as u32
}

/// [`wasm_max_pods`] of this machine's memory and `vm.max_map_count`.
pub fn wasm_max_pods_here() -> u32 {
    let memory = super::eviction::meminfo_bytes("MemTotal").unwrap_or(1 << 30);
    wasm_max_pods(memory, max_map_count())
}

/// Admission's view of the mappings: refuses a pod that would leave less than the reserve.
#[derive(Debug)]
pub struct MappingBudget {
    limit: u64,
    count: fn() -> Option<u64>,
    last: Mutex<Option<Counted>>,
}

#[derive(Debug, Clone, Copy)]
struct Counted {
    at: Instant,
    mappings: u64,
    admitted_since: u64,
}

impl MappingBudget {
    /// A budget of `limit` mappings (`vm.max_map_count`) for this process.
    pub fn new(limit: u64) -> Self {
        Self::counting(limit, mapped)
    }

    /// As [`new`](Self::new), counting the process's mappings with `count`.
    pub fn counting(limit: u64, count: fn() -> Option<u64>) -> Self {
        MappingBudget {
            limit,
            count,
            last: Mutex::new(None),
        }
    }

    /// Whether one more pod fits; counts it when it does.
    pub fn admit(&self) -> Result<(), Rejection> {
        let mut last = self.last.lock().expect("mapping budget lock");
        let now = Instant::now();
        let estimate = |c: &Counted| c.mappings + c.admitted_since * MAPPINGS_PER_POD;
        let stale = last
            .is_none_or(|c| now.duration_since(c.at) >= RECOUNT_AFTER || !self.fits(estimate(&c)));
        if stale {
            let Some(mappings) = (self.count)() else {
                return Ok(());
            };
            *last = Some(Counted {
                at: now,
                mappings,
                admitted_since: 0,
            });
        }
        let counted = last.as_mut().expect("counted above");
        let used = estimate(counted);
        if !self.fits(used) {
            return Err(Rejection {
                reason: "OutOfmappings",
                message: format!(
                    "Pod was rejected: the node agent holds {used} memory mappings of \
                     vm.max_map_count {}; a pod needs about {MAPPINGS_PER_POD} and \
                     {RESERVED_MAPPINGS} are kept for the agent itself (raise \
                     vm.max_map_count or lower --max-pods)",
                    self.limit
                ),
            });
        }
        counted.admitted_since += 1;
        Ok(())
    }

    fn fits(&self, used: u64) -> bool {
        used + MAPPINGS_PER_POD + RESERVED_MAPPINGS <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn a_wasm_node_offers_what_its_memory_and_mappings_hold() {
        // 23 GiB and the kernel's default map count: the mappings are the bound.
        assert_eq!(wasm_max_pods(23 << 30, Some(65_530)), 10_239);
        assert_eq!(wasm_max_pods(4 << 30, Some(65_530)), 4096);
        assert_eq!(wasm_max_pods(64 << 20, Some(65_530)), 110);
        assert_eq!(wasm_max_pods(8 << 30, None), 8192);
    }

    /// What the fake process below holds.
    static MAPPED: AtomicU64 = AtomicU64::new(1000);

    #[test]
    fn refuses_before_the_reserve_and_counts_admitted_pods() {
        let limit = 1000 + MAPPINGS_PER_POD * 2 + RESERVED_MAPPINGS;
        let budget = MappingBudget::counting(limit, || Some(MAPPED.load(Ordering::SeqCst)));
        budget.admit().expect("first");
        budget.admit().expect("second, counted as its estimate");
        // The estimate says full: admission counts again, and the pods are there.
        MAPPED.store(1000 + MAPPINGS_PER_POD * 2, Ordering::SeqCst);
        let refused = budget.admit().expect_err("the third would eat the reserve");
        assert_eq!(refused.reason, "OutOfmappings");
        assert!(
            refused
                .message
                .contains(&format!("vm.max_map_count {limit}")),
            "{}",
            refused.message
        );
        // Pods went away: the recount finds room again.
        MAPPED.store(1000, Ordering::SeqCst);
        budget.admit().expect("room after a recount");
    }

    #[test]
    fn this_process_is_counted() {
        let mappings = mapped().expect("/proc/self/maps");
        assert!(mappings > 10, "{mappings}");
        let budget = MappingBudget::new(mappings / 2);
        assert_eq!(
            budget.admit().expect_err("already over").reason,
            "OutOfmappings"
        );
    }
}
