//! Stock `kubectl` (the one on PATH; `scripts/install-deps.sh` installs Debian's
//! `kubernetes-client` when there is none) against a test server.

use std::path::Path;
use std::process::{Command, Output};

/// `kubectl --server URL --cache-dir CACHE ARGS` (a discovery cache of the test's own), run.
pub fn kubectl_output(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Command::new("kubectl")
        .args(["--server", server, "--cache-dir"])
        .arg(cache)
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("kubectl cannot run ({e}): scripts/install-deps.sh installs it")
        })
}

/// As [`kubectl_output`], failing unless kubectl succeeds; its stdout.
pub fn kubectl(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = kubectl_output(server, cache, args)?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}
