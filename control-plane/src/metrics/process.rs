//! The `process_*` metrics every Prometheus client exports (client_golang's process
//! collector), read from `/proc/self` at each scrape; absent where there is no `/proc`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc/self` when scraped.
#[derive(Debug)]
pub struct ProcessCollector;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: Option<f64>,
}

/// Clock ticks per second and page size of this machine.
fn ticks_and_page_size() -> (f64, f64) {
    // SAFETY: sysconf reads a configuration value and has no preconditions.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (
        if ticks > 0 { ticks as f64 } else { 100.0 },
        if page > 0 { page as f64 } else { 4096.0 },
    )
}

/// Parses `/proc/self/stat` (`stat`) and the boot time line of `/proc/stat` (`btime`).
fn parse_stat(stat: &str, boot_time: f64, ticks: f64, page_size: f64) -> Option<ProcessStats> {
    // The command name is in parentheses and may hold spaces: fields count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: 0.0,
        max_fds: None,
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn read() -> Option<ProcessStats> {
    let (ticks, page_size) = ticks_and_page_size();
    let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut stats = parse_stat(&stat, boot, ticks, page_size)?;
    stats.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    stats.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    Some(stats)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            stats.resident_bytes,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            stats.virtual_bytes,
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            stats.start_time_seconds,
        )?;
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            stats.open_fds,
        )?;
        if let Some(max) = stats.max_fds {
            gauge(
                e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_end_of_the_command_name() {
        // pid (comm) state ppid ... utime=14 stime=15 ... starttime=22 vsize=23 rss=24
        let stat = "42 (skiff (a b)) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 8 0 1000 \
                    123456789 2000 18446744073709551615";
        let stats = parse_stat(stat, 1_700_000_000.0, 100.0, 4096.0).expect("parsed");
        assert_eq!(stats.cpu_seconds, 4.0);
        assert_eq!(stats.start_time_seconds, 1_700_000_010.0);
        assert_eq!(stats.virtual_bytes, 123_456_789.0);
        assert_eq!(stats.resident_bytes, 2000.0 * 4096.0);
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
    }

    #[test]
    fn this_process_has_stats() {
        let stats = read().expect("/proc/self is readable here");
        assert!(
            stats.resident_bytes > 0.0 && stats.open_fds > 0.0,
            "{stats:?}"
        );
    }
}
