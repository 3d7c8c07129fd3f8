//! `skiff` processes on the hosts of a [`Network`]: a control plane on one host and agents on
//! others, each in its host's namespace and reached at its host's address, so that agents can
//! network their pods (`--pod-network bridge`) without touching the test's own network.

use std::path::Path;

use crate::cli::Skiff;
use crate::netns::Network;
use crate::process::SkiffProcess;

/// The API port of a server on a host of its own.
const API_PORT: u16 = 6443;

/// `skiff server EXTRA...` (no node of its own) on `host`, with its URL once it listens.
pub fn start_server_on(
    network: &Network,
    host: usize,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(SkiffProcess, String)> {
    let mut args: Vec<String> = [
        "server",
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen",
        &format!("{}:{API_PORT}", network.address(host)),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut process = SkiffProcess::spawn_in(
        Some(network.namespace(host)),
        args,
        data_dir.with_extension("log"),
    )?;
    let url = process.wait_api_url()?;
    Ok((process, url))
}

/// `skiff agent` named `node` on `host`, joined to `server` with a fresh token, its kubelet
/// endpoint (and so its InternalIP) on the host's address; `extra` flags are appended.
pub fn start_agent_on(
    network: &Network,
    host: usize,
    server: &str,
    node: &str,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<SkiffProcess> {
    let token = Skiff::new(server)
        .ok(&["token", "create"])?
        .trim()
        .to_string();
    let mut args: Vec<String> = [
        "agent",
        "--server",
        server,
        "--token",
        &token,
        "--node-name",
        node,
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen",
        &format!("{}:0", network.address(host)),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    SkiffProcess::spawn_in(
        Some(network.namespace(host)),
        args,
        data_dir.with_extension("log"),
    )
}

/// One `skiff agent` per `(host, node)` of `nodes`, as [`start_agent_on`] starts it, each with
/// its data under `dir/NODE`.
pub fn start_agents_on(
    network: &Network,
    nodes: &[(usize, &str)],
    server: &str,
    dir: &Path,
    extra: &[&str],
) -> anyhow::Result<Vec<SkiffProcess>> {
    nodes
        .iter()
        .map(|&(host, node)| start_agent_on(network, host, server, node, &dir.join(node), extra))
        .collect()
}
