//! An in-process dev cluster for benchmarks: a real API server, store, controllers and
//! scheduler, and one Wasm node agent; only the network is loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skiff_client::Client;
use skiff_control_plane::{Server, ServerConfig, ServerHandle};
use skiff_node_runtime::agent::{Agent, IngressListen};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long the agent has to register its node and report Ready.
const NODE_READY: Duration = Duration::from_secs(30);

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
        Self::start_with_ingress(dir, image_dir, pods, IngressListen::default()).await
    }

    /// As [`DevCluster::start`], the agent serving Ingresses where `ingress` says.
    pub async fn start_with_ingress(
        dir: &Path,
        image_dir: &Path,
        pods: u32,
        ingress: IngressListen,
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
        let agent = Agent::builder()
            .servers(vec![url.clone()])
            .token(token.to_string())
            .node_name("bench-node")
            .data_dir(dir.join("agent"))
            .allow_image_dir(image_dir)
            .runtime(runtime)
            .capacity(64_000, 64 << 30, pods)
            .ingress(ingress)
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
