//! The machine's and the agent process's own usage, read from `/proc` (what cAdvisor reports
//! for the root container and the kubelet for the node).

/// The machine's CPU and memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineUsage {
    /// CPU time all cores spent busy (not idle or waiting for I/O), in total since boot.
    pub cpu_nanos: u64,
    /// Memory in use: `MemTotal - MemAvailable` (what the kernel could not hand out without
    /// reclaiming something a process needs).
    pub working_set_bytes: u64,
    pub total_bytes: u64,
}

/// The agent process's CPU and resident memory (Prometheus' `process_*` basics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessUsage {
    pub cpu_nanos: u64,
    pub resident_bytes: u64,
}

/// The machine's usage now, if `/proc` can be read.
pub fn machine() -> Option<MachineUsage> {
    use procfs::{Current, CurrentSI};
    let cpu = procfs::KernelStats::current().ok()?.total;
    let memory = procfs::Meminfo::current().ok()?;
    let total = memory.mem_total;
    Some(MachineUsage {
        cpu_nanos: busy_ticks(&cpu).saturating_mul(nanos_per_tick()),
        working_set_bytes: total.saturating_sub(memory.mem_available?),
        total_bytes: total,
    })
}

/// The agent process's usage now, if `/proc/self` can be read.
pub fn process() -> Option<ProcessUsage> {
    let me = procfs::process::Process::myself().ok()?;
    let stat = me.stat().ok()?;
    Some(ProcessUsage {
        cpu_nanos: (stat.utime + stat.stime).saturating_mul(nanos_per_tick()),
        resident_bytes: stat.rss.saturating_mul(procfs::page_size()),
    })
}

/// Nanoseconds in one clock tick of `/proc`'s CPU times (`USER_HZ`).
fn nanos_per_tick() -> u64 {
    1_000_000_000 / procfs::ticks_per_second().max(1)
}

/// Busy ticks of all cores: user, nice, system, irq, softirq and steal (idle and iowait are
/// not busy; guest time is already in user).
fn busy_ticks(cpu: &procfs::CpuTime) -> u64 {
    cpu.user
        + cpu.nice
        + cpu.system
        + cpu.irq.unwrap_or(0)
        + cpu.softirq.unwrap_or(0)
        + cpu.steal.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        use procfs::FromReadSI;
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 100 5 50 9000 40 3 2 1 0 0\n\
                    ctxt 1\nbtime 1\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n";
        let info = procfs::ExplicitSystemInfo {
            boot_time_secs: 1,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: true,
        };
        let stats = procfs::KernelStats::from_read(stat.as_bytes(), &info).expect("parsed");
        assert_eq!(busy_ticks(&stats.total), 100 + 5 + 50 + 3 + 2 + 1);
    }

    #[test]
    fn this_machine_and_process_read() {
        let machine = machine().expect("/proc is mounted");
        assert!(machine.total_bytes > 0 && machine.working_set_bytes <= machine.total_bytes);
        assert!(machine.cpu_nanos > 0);
        assert!(process().expect("/proc/self").resident_bytes > 0);
    }
}
