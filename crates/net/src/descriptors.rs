//! The process's file-descriptor budget: raise the soft limit to the hard one at startup,
//! and keep a reserve out of what listeners may take, so a connection flood can never leave
//! the store without descriptors.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors never given to connections: the store's files, logs, images, outbound
/// connections. At least this many, and at least a quarter of the limit.
pub const MIN_RESERVE: u64 = 256;

/// Raises RLIMIT_NOFILE's soft limit to its hard limit and returns the new soft limit.
pub fn raise_limit() -> nix::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// How many descriptors the listeners together may hold under a soft limit of `limit`: all
/// but a reserve (`MIN_RESERVE`, or a quarter of the limit if that is more; half of a small
/// limit).
pub fn connection_budget(limit: u64) -> usize {
    let reserve = (limit / 4).max(MIN_RESERVE.min(limit / 2));
    usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_a_reserve() {
        assert_eq!(connection_budget(256), 128, "half of a small limit");
        assert_eq!(connection_budget(1024), 768);
        assert_eq!(
            connection_budget(1 << 20),
            3 << 18,
            "a quarter of a large one"
        );
        assert_eq!(connection_budget(0), 0);
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let raised = raise_limit().unwrap();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((raised, soft), (hard, hard));
    }
}
