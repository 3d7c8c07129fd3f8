//! An in-process dev cluster for benchmarks: a real API server, store, controllers and
//! scheduler, and one Wasm node agent; only the network is loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use skiff_node_runtime::agent::{Agent, IngressListen, PodNetworkMode, ProxyMode, DEFAULT_BRIDGE};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long the agent has to register its node and report Ready.
const NODE_READY: Duration = Duration::from_secs(30);

/// How the dev cluster's node networks its pods and serves Services.
#[derive(Debug, Default)]
pub struct NodeNetwork {
    /// Where the agent serves the cluster's Ingresses.
    pub ingress: IngressListen,
    /// Each pod gets an address of the node's pod CIDR on a bridge, and the agent's userspace
    /// proxy serves Services' ClusterIPs (root, best in a network namespace of the
    /// benchmark's: [`crate::netns`]); otherwise pods share the node's network and ClusterIPs
    /// are not served.
    pub bridge: bool,
}

/// The server, a client of it, and the agent's task.
pub struct DevCluster {
    server: ServerHandle,
    pub client: Client,
    stop: oneshot::Sender<()>,
    agent: JoinHandle<anyhow::Result<()>>,
}

impl DevCluster {
    /// Starts the server and one agent under `dir`, the agent running `file:` images from
    /// `image_dir` and holding up to `pods` pods; returns once the node registered.
    pub async fn start(dir: &Path, image_dir: &Path, pods: u32) -> anyhow::Result<DevCluster> {
        Self::start_with_network(dir, image_dir, pods, NodeNetwork::default()).await
    }

    /// As [`DevCluster::start`], the node networked as `network` says.
    pub async fn start_with_network(
        dir: &Path,
        image_dir: &Path,
        pods: u32,
        network: NodeNetwork,
    ) -> anyhow::Result<DevCluster> {
        let server = Server::start(ServerConfig::new(
            "bench",
            dir.join("server"),
            "127.0.0.1:0".parse()?,
        ))
        .await?;
        let url = server.url();
        let runtime = Arc::new(WasmRuntime::new(dir.join("agent/wasm"))?);
        let client = Client::new(std::slice::from_ref(&url))?;
        let token = crate::cluster::join_token(&client).await?;
        let mut builder = Agent::builder();
        if network.bridge {
            builder = builder
                .pod_network(PodNetworkMode::Bridge {
                    bridge: DEFAULT_BRIDGE.into(),
                    cluster_cidr: None,
                })
                .proxy(ProxyMode::Userspace);
        }
        let agent = builder
            .servers(vec![url.clone()])
            .token(token.to_string())
            .node_name("bench-node")
            .data_dir(dir.join("agent"))
            .allow_image_dir(image_dir)
            .runtime(runtime)
            .capacity(64_000, 64 << 30, pods)
            .ingress(network.ingress)
            // A plain-HTTP server: no CA for an HTTPS listener; the tunnel reaches the node.
            .without_listener()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let agent = tokio::spawn(async move {
            agent
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .map_err(anyhow::Error::from)
        });
        crate::cluster::wait_nodes_ready(&client, 1, NODE_READY).await?;
        Ok(DevCluster {
            server,
            client,
            stop,
            agent,
        })
    }

    /// Stops the agent, then the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.agent.await;
        self.server.shutdown().await;
    }
}
