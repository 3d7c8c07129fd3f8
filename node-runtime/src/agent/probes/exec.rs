//! exec probes: the command run in the container through the runtime's `exec_sync`; exit
//! code 0 is a success. A runtime that cannot exec (Wasm) fails the probe with its reason.

use std::time::Duration;

use super::{Outcome, Target};

/// Runs `command` in the target container within `timeout`.
pub async fn attempt(target: &Target, command: &[String], timeout: Duration) -> Outcome {
    let run = target
        .runtime
        .exec_sync(&target.container_id, command, timeout);
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(result)) if result.exit_code == 0 => Outcome::Success,
        Ok(Ok(result)) => {
            let mut output = String::from_utf8_lossy(&result.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&result.stderr));
            let output = output.trim();
            Outcome::Failure(if output.is_empty() {
                format!("command {command:?} exited with {}", result.exit_code)
            } else {
                output.to_string()
            })
        }
        Ok(Err(err)) => Outcome::Failure(err.to_string()),
        Err(_) => Outcome::Failure(format!(
            "command {command:?} timed out after {}s",
            timeout.as_secs()
        )),
    }
}
