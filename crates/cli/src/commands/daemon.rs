//! What the daemons (`skiff server --dev` and `skiff agent`) share: signals, the host's name,
//! and the Wasm node agent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use skiff_node_runtime::agent::Agent;
use skiff_node_runtime::runtime::wasm::WasmRuntime;

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

/// A node agent with the Wasm runtime, its data under `data_dir`.
pub fn wasm_agent(
    servers: Vec<String>,
    token: &str,
    labels: BTreeMap<String, String>,
    node: String,
    data_dir: PathBuf,
    listen: SocketAddr,
) -> anyhow::Result<Agent> {
    let runtime = WasmRuntime::new(data_dir.join("wasm")).context("starting the Wasm runtime")?;
    Ok(Agent::builder()
        .servers(servers)
        .token(token)
        .labels(labels)
        .node_name(node)
        .data_dir(data_dir)
        .listen(listen)
        .runtime(Arc::new(runtime))
        .build()?)
}
