//! Waiting on conditions with a deadline (never sleep-and-hope).

use std::time::{Duration, Instant};

/// How often a condition is re-checked.
const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Ok(Some(value))`, failing after `timeout` with the last
/// observation (`Ok(None)` means "not yet"; `Err` is remembered and retried).
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "condition not met".to_string(),
            Err(err) => format!("{err:#}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        std::thread::sleep(POLL);
    }
}
