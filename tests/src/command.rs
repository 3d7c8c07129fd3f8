//! Running the system tools the harness needs (ip, nft, mount) as a test's root user.

use std::process::Command;

use anyhow::{bail, Context};

/// Runs `program ARGS`, failing with its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (scripts/install-deps.sh installs it)"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
