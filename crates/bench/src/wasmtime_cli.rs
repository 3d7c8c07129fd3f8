//! `wasmtime serve`, the reference a Skiff wasi:http pod is measured against: the executable
//! named with `--wasmtime`, or wasmtime-cli of the workspace's wasmtime version, which the
//! bench installs with cargo into `target/bench-tools` the first time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;

/// The workspace's wasmtime version (root Cargo.toml), so both serve with the same engine.
pub const VERSION: &str = "48.0.8";
/// Where the bench installs wasmtime-cli, relative to the workspace root it runs from.
const TOOLS_DIR: &str = "target/bench-tools";

/// `given`, or the bench's own wasmtime-cli, installed now if missing.
pub async fn find_or_install(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        anyhow::ensure!(
            path.is_file(),
            "--wasmtime {}: no such file",
            path.display()
        );
        return Ok(path.to_path_buf());
    }
    let installed = Path::new(TOOLS_DIR).join("bin/wasmtime");
    if !installed.is_file() {
        let version = format!("={VERSION}");
        let args = [
            "install",
            "wasmtime-cli",
            "--version",
            &version,
            "--locked",
            "--root",
            TOOLS_DIR,
        ];
        println!(
            "installing wasmtime serve once (takes a while; --wasmtime PATH uses another): cargo {}",
            args.join(" ")
        );
        let status = tokio::process::Command::new("cargo")
            .args(args)
            .status()
            .await
            .context("running cargo install")?;
        anyhow::ensure!(status.success(), "cargo install wasmtime-cli: {status}");
    }
    Ok(installed.canonicalize()?)
}

/// What `wasmtime --version` says.
pub async fn version(wasmtime: &Path) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(wasmtime)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("running {} --version", wasmtime.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `wasmtime serve` of `component` on `addr`, with the environment the pod gets; killed when
/// dropped.
pub fn serve(
    wasmtime: &Path,
    component: &Path,
    addr: SocketAddr,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(wasmtime)
        .args([
            "serve",
            "-Scli",
            "--env",
            "POD_NAME=wasmtime-serve",
            "--addr",
        ])
        .arg(addr.to_string())
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting wasmtime serve")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_the_workspace_wasmtime() {
        let manifest = include_str!("../../../Cargo.toml");
        assert!(
            manifest.contains(&format!("\nwasmtime = {{ version = \"={VERSION}\"")),
            "the workspace's wasmtime is not {VERSION}: update wasmtime_cli::VERSION"
        );
    }
}
