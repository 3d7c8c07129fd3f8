//! `skiff bench ...`: figures from real clusters, printed (never asserted in tests).

mod deploy;
mod node_loss;
mod nodes;
mod server;
mod store;

use std::path::{Path, PathBuf};

use anyhow::Context;
use std::time::Duration;

pub use deploy::deploy;
pub use node_loss::node_loss;
pub use nodes::nodes;
pub use store::store;

/// The benchmark guest as an absolute path, with a hint when it was not built.
fn guest_path(guest: &Path) -> anyhow::Result<PathBuf> {
    guest.canonicalize().with_context(|| {
        format!(
            "{}: guest not found (build it with scripts/build-guests.sh)",
            guest.display()
        )
    })
}

fn tempfile_dir(given: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok(tempfile::tempdir_in(dir)?)
        }
        None => Ok(tempfile::tempdir()?),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() * p).div_ceil(100))
        .saturating_sub(1)
        .min(sorted.len() - 1);
    sorted[index]
}

/// Resident memory of this process.
fn rss_bytes() -> Option<u64> {
    memory_of("self").map(|(rss, _)| rss)
}

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`) of process `pid` (`self` for this one).
fn memory_of(pid: &str) -> Option<(u64, u64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
