//! Skiff control plane: Kubernetes-shaped API server, scheduler and controllers over the Raft store.

mod bootstrap;
pub mod controllers;
pub mod error;
mod http;
pub mod registry;
pub mod scheduler;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use skiff_raft_store::{Store, StoreConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::controllers::events::EventRecorder;
use crate::registry::Registry;

/// Default node grace: a few missed heartbeats (agents beat every 2 s), not Kubernetes' 40-50 s.
pub const DEFAULT_NODE_GRACE: Duration = Duration::from_secs(6);

/// How many past revisions a watch may resume from, by default.
pub const DEFAULT_WATCH_HISTORY: u64 = 100_000;

/// How to run one control-plane member.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Member name (Raft member and default node name in dev mode).
    pub name: String,
    /// Directory holding the store.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// How many past revisions a watch may resume from; older ones get 410 Gone.
    pub watch_history: u64,
    /// How long a node may go without a heartbeat before its pods are replaced elsewhere.
    pub node_grace: Duration,
}

impl ServerConfig {
    /// A configuration with the default watch history.
    pub fn new(name: impl Into<String>, data_dir: PathBuf, listen: SocketAddr) -> Self {
        ServerConfig {
            name: name.into(),
            data_dir,
            listen,
            watch_history: DEFAULT_WATCH_HISTORY,
            node_grace: DEFAULT_NODE_GRACE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] skiff_raft_store::StoreError),
    #[error("creating the system namespaces: {0}")]
    Bootstrap(#[from] error::ApiError),
}

/// Entry point of a control-plane member.
pub struct Server;

impl Server {
    /// Opens the store, starts the API server, the controllers and the scheduler.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let store = Store::open(StoreConfig {
            data_dir: config.data_dir.join("store"),
            id: 1,
            watch_history: config.watch_history,
        })
        .await?;
        let registry = Registry::new(store.clone());
        bootstrap::ensure_system_objects(&registry).await?;

        let (stop, shutdown) = watch::channel(false);
        let informers = controllers::Informers::start(&registry, &shutdown);
        controllers::start(&registry, &informers, config.node_grace, &shutdown);
        scheduler::Scheduler {
            registry: registry.clone(),
            pods: informers.pods.clone(),
            nodes: informers.nodes.clone(),
            events: EventRecorder::new(registry.clone(), scheduler::DEFAULT_SCHEDULER),
        }
        .spawn(shutdown.clone());

        let app = http::router(http::AppState {
            registry,
            http: reqwest::Client::new(),
            shutdown: shutdown.clone(),
        });
        let mut serve_shutdown = shutdown.clone();
        let serving = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    shutdown::stopped(&mut serve_shutdown).await;
                })
                .await;
            if let Err(err) = result {
                tracing::error!(%err, "API server stopped");
            }
        });
        tracing::info!(name = %config.name, %local_addr, "control plane started");
        Ok(ServerHandle {
            local_addr,
            stop,
            serving,
            store,
        })
    }
}

/// A running control-plane member.
pub struct ServerHandle {
    /// Where the API actually listens.
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    serving: JoinHandle<()>,
    store: Store,
}

impl ServerHandle {
    /// The API base URL, e.g. `http://127.0.0.1:6443`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops serving (open watches end), stops controllers, and flushes the store.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.serving.await;
        self.store.shutdown().await;
    }
}
