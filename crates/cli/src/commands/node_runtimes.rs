//! Which container runtimes a node has (`--runtimes`), and the Linux runtime's flags.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_node_runtime::agent::AgentBuilder;
use skiff_node_runtime::runtime::linux::{LinuxConfig, LinuxRuntime, ShimCommand};
use skiff_node_runtime::runtime::logs::LogLimits;
use skiff_node_runtime::runtime::wasm::WasmRuntime;

/// A runtime a node can have.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// WebAssembly modules and components on wasmtime, in the agent's process.
    Wasm,
    /// Linux container images, each container under its own shim (needs root and cgroups).
    Linux,
}

/// The node's runtimes.
#[derive(Args, Debug)]
pub struct RuntimeArgs {
    /// The runtimes this node has, comma-separated (`wasm,linux`); a pod runs on the first
    /// that can run its images, or on the one its RuntimeClass names.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "wasm")]
    pub runtimes: Vec<RuntimeKind>,
    /// The most processes (and threads) one Linux container may have (its cgroup's pids.max).
    #[arg(long, default_value_t = skiff_node_runtime::runtime::linux::DEFAULT_PIDS_LIMIT)]
    pub pod_pids_limit: u64,
    /// Where `seccompProfile: Localhost` profiles are (a pod's `localhostProfile` is a path
    /// under it); default DATA_DIR/seccomp.
    #[arg(long)]
    pub seccomp_profile_root: Option<std::path::PathBuf>,
}

impl RuntimeArgs {
    /// Whether Wasm is the node's only runtime.
    pub fn wasm_only(&self) -> bool {
        self.runtimes.iter().all(|r| *r == RuntimeKind::Wasm)
    }

    /// Adds the chosen runtimes, their state under `data_dir`, to `builder`.
    pub fn apply(
        &self,
        mut builder: AgentBuilder,
        data_dir: &Path,
        logs: LogLimits,
    ) -> anyhow::Result<AgentBuilder> {
        for kind in &self.runtimes {
            builder = match kind {
                RuntimeKind::Wasm => {
                    let runtime = WasmRuntime::new(data_dir.join("wasm"))
                        .context("starting the Wasm runtime")?
                        .with_log_limits(logs);
                    // Guests live in the agent's process: keep its mappings in budget.
                    let builder = match skiff_node_runtime::agent::max_map_count() {
                        Some(limit) => builder.max_map_count(limit),
                        None => builder,
                    };
                    builder.runtime(Arc::new(runtime))
                }
                RuntimeKind::Linux => {
                    let shim = ShimCommand::current_exe().context("finding the skiff binary")?;
                    let config = LinuxConfig {
                        pids_limit: self.pod_pids_limit,
                        log_limits: logs,
                        seccomp_profile_root: self
                            .seccomp_profile_root
                            .clone()
                            .unwrap_or_else(|| data_dir.join("seccomp")),
                        ..LinuxConfig::new(data_dir.join("linux"), shim)
                    };
                    let runtime =
                        LinuxRuntime::new(config).context("starting the Linux runtime")?;
                    builder.runtime(Arc::new(runtime))
                }
            };
        }
        Ok(builder)
    }
}
