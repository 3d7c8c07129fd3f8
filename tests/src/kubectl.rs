//! Stock `kubectl` (the one on PATH; `scripts/install-deps.sh` installs Debian's
//! `kubernetes-client` when there is none) against a test server.

use std::path::Path;
use std::process::{Command, Output};

/// `kubectl --kubeconfig DATA_DIR/admin.kubeconfig --cache-dir CACHE` (a discovery cache of
/// the test's own) for the server at `server`; `--server URL` for a server the harness did
/// not start.
pub fn kubectl_command(server: &str, cache: &Path) -> Command {
    let mut command = Command::new("kubectl");
    match crate::credentials::kubeconfig_for(server) {
        Some(kubeconfig) => command.arg("--kubeconfig").arg(kubeconfig),
        None => command.args(["--server", server]),
    };
    command.arg("--cache-dir").arg(cache);
    command
}

/// `kubectl_command(server, cache)` with `args`, run.
pub fn kubectl_output(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<Output> {
    kubectl_command(server, cache)
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
