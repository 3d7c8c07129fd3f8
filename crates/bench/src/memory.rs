//! Memory figures of processes, from `/proc`.

/// Resident memory of this process.
pub fn rss_bytes() -> Option<u64> {
    memory_of("self").map(|(rss, _)| rss)
}

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`) of process `pid` (`self` for this one).
pub fn memory_of(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
