//! Stock `kubectl` (the one on PATH; `scripts/install-deps.sh` installs Debian's
//! `kubernetes-client` when there is none) against a test server, and Debian's kubectl 1.20,
//! which the same script unpacks beside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `kubectl --kubeconfig DATA_DIR/admin.kubeconfig --cache-dir CACHE` (a discovery cache of
/// the test's own) for the server at `server`; `--server URL` for a server the harness did
/// not start.
pub fn kubectl_command(server: &str, cache: &Path) -> Command {
    kubectl_command_of(Path::new("kubectl"), server, cache)
}

/// As [`kubectl_command`], with the kubectl binary at `binary`.
fn kubectl_command_of(binary: &Path, server: &str, cache: &Path) -> Command {
    let mut command = Command::new(binary);
    match crate::credentials::kubeconfig_for(server) {
        Some(kubeconfig) => command.arg("--kubeconfig").arg(kubeconfig),
        None => command.args(["--server", server]),
    };
    command.arg("--cache-dir").arg(cache);
    command
}

/// `kubectl_command(server, cache)` with `args`, run.
pub fn kubectl_output(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<Output> {
    run(kubectl_command(server, cache), Path::new("kubectl"), args)
}

/// As [`kubectl_output`], failing unless kubectl succeeds; its stdout.
pub fn kubectl(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<String> {
    succeeded(kubectl_output(server, cache, args)?, "kubectl", args)
}

/// Where Debian's kubectl 1.20 is: `SKIFF_KUBECTL_1_20`, else
/// `/opt/kubectl-1.20/usr/bin/kubectl` (where `scripts/install-deps.sh` unpacks it).
fn kubectl_1_20_binary() -> PathBuf {
    std::env::var_os("SKIFF_KUBECTL_1_20")
        .map(Into::into)
        .unwrap_or_else(|| "/opt/kubectl-1.20/usr/bin/kubectl".into())
}

/// As [`kubectl_command`], with kubectl 1.20.
pub fn kubectl_1_20_command(server: &str, cache: &Path) -> Command {
    kubectl_command_of(&kubectl_1_20_binary(), server, cache)
}

/// As [`kubectl`], with kubectl 1.20.
pub fn kubectl_1_20(server: &str, cache: &Path, args: &[&str]) -> anyhow::Result<String> {
    let binary = kubectl_1_20_binary();
    let out = run(kubectl_1_20_command(server, cache), &binary, args)?;
    succeeded(out, "kubectl 1.20", args)
}

fn run(mut command: Command, binary: &Path, args: &[&str]) -> anyhow::Result<Output> {
    command.args(args).output().map_err(|e| {
        anyhow::anyhow!(
            "{} cannot run ({e}): scripts/install-deps.sh installs it",
            binary.display()
        )
    })
}

fn succeeded(out: Output, which: &str, args: &[&str]) -> anyhow::Result<String> {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "{which} {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// The header of a `kubectl get` table: its column names (columns are 3 spaces apart).
pub fn table_header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}
