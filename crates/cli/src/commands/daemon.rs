//! What the daemons (`skiff server --dev` and `skiff agent`) share: signals, the host's name,
//! the image and log flags and the Wasm node agent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_node_runtime::agent::Agent;
use skiff_node_runtime::runtime::logs::LogLimits;
use skiff_node_runtime::runtime::wasm::WasmRuntime;

use super::node_resources::NodeResourceArgs;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The node name a daemon uses when none is given: this host's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "skiff-node".into())
}

/// Where a node's `file:` images may come from.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Allow `file:` images from regular files in DIR and below (repeatable; symlinks are
    /// resolved first). A node agent allows none without it; `skiff server --dev` allows its
    /// working directory and the repository's `wasm-examples` unless it is given.
    #[arg(long = "allow-image-dir", value_name = "DIR")]
    pub allow_image_dirs: Vec<PathBuf>,
    /// The largest `file:` image the node reads, as a quantity (`256Mi`, `1Gi`).
    #[arg(long, default_value = "256Mi", value_parser = parse_size)]
    pub max_image_size: u64,
}

/// The flags of a node: its images, its container logs and what it keeps of its memory.
#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub resources: NodeResourceArgs,
}

/// Caps on the node's container logs.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Rotate a container's log when it reaches this size (as the kubelet's flag).
    #[arg(long, default_value = "10Mi", value_parser = parse_size)]
    pub container_log_max_size: u64,
    /// Log files kept per container, the live one counted (as the kubelet's flag).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub container_log_max_files: u32,
    /// Drop container output (after one marker line) while the filesystem of the node's
    /// data dir has less free than this, so logs never fill the store's disk.
    #[arg(long, default_value = "100Mi", value_parser = parse_size)]
    pub container_log_min_free: u64,
}

impl LogArgs {
    fn limits(&self) -> LogLimits {
        LogLimits {
            max_size: self.container_log_max_size,
            max_files: self.container_log_max_files,
            min_free: self.container_log_min_free,
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    skiff_api::quantity::parse_bytes(text).map_err(|e| e.to_string())
}

impl ImageArgs {
    /// Dev mode's default when no directory is given: the working directory, and
    /// `wasm-examples` in it or above it, or above the `skiff` binary (a build in the repo).
    pub fn or_dev_defaults(mut self) -> Self {
        if !self.allow_image_dirs.is_empty() {
            return self;
        }
        let cwd = std::env::current_dir().ok();
        let exe = std::env::current_exe().ok();
        let examples = [cwd.as_deref(), exe.as_deref()]
            .into_iter()
            .flatten()
            .flat_map(Path::ancestors)
            .map(|dir| dir.join("wasm-examples"))
            .find(|dir| dir.is_dir());
        self.allow_image_dirs
            .extend(cwd.into_iter().chain(examples));
        self
    }
}

/// A node agent with the Wasm runtime, its data under `data_dir`.
pub fn wasm_agent(
    servers: Vec<String>,
    token: &str,
    labels: BTreeMap<String, String>,
    node: String,
    data_dir: PathBuf,
    listen: SocketAddr,
    NodeArgs {
        images,
        logs,
        resources,
    }: NodeArgs,
) -> anyhow::Result<Agent> {
    if images.allow_image_dirs.is_empty() {
        eprintln!("warning: no --allow-image-dir given: this node refuses every file: image");
    }
    crate::private_files::private_dir(&data_dir)?;
    let runtime = WasmRuntime::new(data_dir.join("wasm"))
        .context("starting the Wasm runtime")?
        .with_log_limits(logs.limits());
    let builder = images
        .allow_image_dirs
        .into_iter()
        .fold(resources.apply(Agent::builder()), |builder, dir| {
            builder.allow_image_dir(dir)
        });
    Ok(builder
        .max_image_size(images.max_image_size)
        .servers(servers)
        .token(token)
        .labels(labels)
        .node_name(node)
        .data_dir(data_dir)
        .listen(listen)
        .runtime(Arc::new(runtime))
        .build()?)
}
