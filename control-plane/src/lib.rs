//! Skiff control plane: Kubernetes-shaped API server, scheduler and controllers over the Raft store.

mod bootstrap;
pub mod controllers;
pub mod error;
mod http;
pub mod identity;
mod leadership;
pub mod registry;
pub mod runtime;
pub mod scheduler;
#[cfg(test)]
mod test_registry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use skiff_api::pod_cidr::PodCidrRange;
pub use skiff_net::ConnLimits;
pub use skiff_raft_store::{
    restore_backup, stored_cluster, BackupInfo, Cluster, ClusterError, JoinConf, Member, PeerTls,
    PeerTlsError, Timing, DEFAULT_LOG_RETAIN, MAX_PEER_CONNECTIONS,
};

/// The store's directory inside a server's data dir.
pub const STORE_DIR: &str = "store";
use skiff_raft_store::{Store, StoreConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::registry::allocation::{
    Cidr, PortRange, RangeError, ServiceRanges, DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR,
};
use crate::registry::Registry;

/// Default node grace: a few missed heartbeats (agents beat every 2 s), not Kubernetes' 40-50 s.
pub const DEFAULT_NODE_GRACE: Duration = Duration::from_secs(6);

/// How many past revisions a watch may resume from, by default.
pub const DEFAULT_WATCH_HISTORY: u64 = 100_000;

/// How long a lone member waits for its first term before it starts serving.
const FIRST_TERM_WAIT: Duration = Duration::from_secs(10);

/// How to run one control-plane member.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Member name (Raft member and default node name in dev mode).
    pub name: String,
    /// Directory holding the store.
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The control-plane members (one, unless started with `--initial-cluster`).
    pub cluster: Cluster,
    /// Where this member accepts Raft traffic from the others.
    pub peer_listen: Option<SocketAddr>,
    /// Mutual TLS with the other members (`--peer-*` flags); plain TCP without it.
    pub peer_tls: Option<PeerTls>,
    /// Raft heartbeat and election timing.
    pub timing: Timing,
    /// Raft log entries kept behind the applied index; followers further behind get a snapshot.
    pub log_retain: u64,
    /// For a new member joining a running cluster: the group's Raft configuration.
    pub join: Option<JoinConf>,
    /// How many past revisions a watch may resume from; older ones get 410 Gone.
    pub watch_history: u64,
    /// How long a node may go without a heartbeat before its pods are replaced elsewhere.
    pub node_grace: Duration,
    /// The blocks of the cluster CIDR that nodes get as pod CIDRs (`--cluster-cidr`,
    /// `--node-cidr-mask-size`).
    pub pod_cidrs: PodCidrRange,
    /// How many API connections are served at once and how long they may sit idle.
    pub connections: ConnLimits,
    /// Where Services get their ClusterIPs and NodePorts.
    pub service_ranges: ServiceRanges,
}

impl ServerConfig {
    /// A lone member with the default watch history and timing.
    pub fn new(name: impl Into<String>, data_dir: PathBuf, listen: SocketAddr) -> Self {
        let name = name.into();
        ServerConfig {
            cluster: Cluster::single(&name),
            name,
            data_dir,
            listen,
            peer_listen: None,
            peer_tls: None,
            timing: Timing::default(),
            log_retain: DEFAULT_LOG_RETAIN,
            join: None,
            watch_history: DEFAULT_WATCH_HISTORY,
            node_grace: DEFAULT_NODE_GRACE,
            pod_cidrs: PodCidrRange::default(),
            connections: ConnLimits::default(),
            service_ranges: ServiceRanges::default(),
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
    #[error("the store did not elect itself and create the system namespaces within 10 s")]
    FirstTerm,
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
            data_dir: config.data_dir.join(STORE_DIR),
            cluster: config.cluster.clone(),
            peer_listen: config.peer_listen,
            peer_tls: config.peer_tls.clone(),
            watch_history: config.watch_history,
            timing: config.timing,
            log_retain: config.log_retain,
            join: config.join.clone(),
        })
        .await?;
        let registry = Registry::new(store.clone()).with_service_ranges(config.service_ranges);

        let shutdown = CancellationToken::new();
        let (bootstrapped, mut first_term) = watch::channel(false);
        let leading = leadership::spawn(
            store.clone(),
            config.service_ranges,
            controllers::Settings {
                node_grace: config.node_grace,
                pod_cidrs: config.pod_cidrs,
            },
            shutdown.clone(),
            bootstrapped,
        );
        // The membership the store runs with (a cluster started alone may have grown since).
        if store.cluster().members.len() == 1 {
            // A lone member leads at once: serve only when the system namespaces exist.
            tokio::time::timeout(FIRST_TERM_WAIT, first_term.wait_for(|done| *done))
                .await
                .map_err(|_| ServerError::FirstTerm)?
                .map_err(|_| ServerError::FirstTerm)?;
        }

        let app = http::router(http::AppState {
            registry,
            http: reqwest::Client::new(),
            shutdown: shutdown.clone(),
        });
        let serving = tokio::spawn(skiff_net::http::serve(
            listener,
            app,
            config.connections,
            shutdown.clone(),
        ));
        tracing::info!(name = %config.name, %local_addr, "control plane started");
        Ok(ServerHandle {
            local_addr,
            shutdown,
            serving,
            leading,
            store,
        })
    }
}

/// A running control-plane member.
pub struct ServerHandle {
    /// Where the API actually listens.
    pub local_addr: SocketAddr,
    /// Cancelled on shutdown: ends open watches, the API server and the leader's work.
    shutdown: CancellationToken,
    serving: JoinHandle<()>,
    leading: JoinHandle<()>,
    store: Store,
}

impl ServerHandle {
    /// The API base URL, e.g. `http://127.0.0.1:6443`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Resolves if a membership change removes this server from the cluster.
    pub async fn removed(&self) {
        let mut status = self.store.status();
        if status.wait_for(|s| s.removed).await.is_err() {
            // The store stopped for another reason: that is not a removal.
            std::future::pending::<()>().await;
        }
    }

    /// Stops serving (open watches end), stops controllers, and flushes the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.serving.await;
        let _ = self.leading.await;
        self.store.shutdown().await;
    }
}
