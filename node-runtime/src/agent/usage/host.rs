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
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let (total, available) = memory(&meminfo)?;
    Some(MachineUsage {
        cpu_nanos: busy_ticks(&stat)?.saturating_mul(nanos_per_tick()),
        working_set_bytes: total.saturating_sub(available),
        total_bytes: total,
    })
}

/// The agent process's usage now, if `/proc/self` can be read.
pub fn process() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(ProcessUsage {
        cpu_nanos: process_ticks(&stat)?.saturating_mul(nanos_per_tick()),
        resident_bytes: kib_field(&status, "VmRSS:")?.saturating_mul(1024),
    })
}

/// Nanoseconds in one clock tick of `/proc`'s CPU times (`USER_HZ`).
fn nanos_per_tick() -> u64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / u64::try_from(hz).ok().filter(|hz| *hz > 0).unwrap_or(100)
}

/// Busy ticks of all cores from `/proc/stat`'s `cpu` line: user, nice, system, irq, softirq
/// and steal (idle and iowait are not busy; guest time is already in user).
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// `MemTotal` and `MemAvailable` in bytes from `/proc/meminfo`.
fn memory(meminfo: &str) -> Option<(u64, u64)> {
    let total = kib_field(meminfo, "MemTotal:")?;
    let available = kib_field(meminfo, "MemAvailable:")?;
    Some((total * 1024, available * 1024))
}

/// A `Name:   123 kB` line's number.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime from `/proc/<pid>/stat` (fields 14 and 15, counted after the command name,
/// which may itself hold spaces and parentheses).
fn process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\n";
        assert_eq!(busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(busy_ticks("intr 1 2\n"), None);
    }

    #[test]
    fn memory_in_use_is_total_less_available() {
        let meminfo = "MemTotal:       16000 kB\nMemFree:         1000 kB\n\
                       MemAvailable:    6000 kB\n";
        assert_eq!(memory(meminfo), Some((16000 * 1024, 6000 * 1024)));
        assert_eq!(memory("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn process_ticks_survive_a_name_with_spaces_and_parentheses() {
        let stat = "42 (skiff (agent) x) S 1 42 42 0 -1 4194560 100 0 0 0 70 30 0 0 20 0 8 0";
        assert_eq!(process_ticks(stat), Some(100));
    }

    #[test]
    fn this_machine_and_process_read() {
        let machine = machine().expect("/proc is mounted");
        assert!(machine.total_bytes > 0 && machine.working_set_bytes <= machine.total_bytes);
        assert!(machine.cpu_nanos > 0);
        assert!(process().expect("/proc/self").resident_bytes > 0);
    }
}
