//! Skiff control plane: Kubernetes-shaped API server, scheduler and controllers over the Raft store.

mod apiserver_lease;
pub mod apply;
pub mod authz;
mod bootstrap;
pub mod certificates;
pub mod controllers;
pub mod encryption;
pub mod error;
mod http;
pub mod identity;
mod leadership;
pub mod metrics;
pub mod openapi;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod serviceaccount;
#[cfg(test)]
mod test_registry;
pub mod token_file;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
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

pub use crate::http::inflight::InflightLimits;
pub use crate::registry::allocation::{
    Cidr, PortRange, RangeError, ServiceRanges, DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDR,
};
use crate::registry::Registry;

/// Default node grace, as Kubernetes' node-monitor grace period: a node Lease of 40 s, renewed
/// every 10 s, may miss three renewals.
pub const DEFAULT_NODE_GRACE: Duration = Duration::from_secs(40);

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
    /// `--encryption-provider-config`: which resources are encrypted at rest, with which
    /// keys; without it, the data dir's `encryption-config.yaml` (made on a lone member's
    /// first start: Secrets are encrypted by default), or, on members of a larger cluster
    /// (`tls` given), the cluster's config shared through the store.
    pub encryption_provider_config: Option<PathBuf>,
    /// How many API requests each user, and all users, may have in flight.
    pub inflight: InflightLimits,
    /// Where to append one audit event (JSON line) per API request, if anywhere.
    pub audit_log: Option<PathBuf>,
    /// The API's certificates: with them `listen` serves HTTPS only; without them (tests of
    /// this library) it serves plain HTTP as a cluster admin and must be a loopback address.
    pub tls: Option<Arc<pki::ServerTls>>,
    /// A further plain-HTTP listener (`--insecure-http`), loopback only, whose requests act as
    /// a cluster admin.
    pub insecure_http: Option<SocketAddr>,
    /// `--token-auth-file`: static bearer tokens and their users, read at start.
    pub token_auth_file: Option<PathBuf>,
    /// The longest validity of a certificate the CSR signer issues
    /// (`--cluster-signing-duration`).
    pub cluster_signing_duration: Duration,
    /// `--advertise-address`: the IP this member publishes in its lease, and so in the
    /// `kubernetes` Service's endpoints (default: the `listen` host; for a wildcard, the
    /// address of the default route's interface).
    pub advertise_address: Option<IpAddr>,
    /// How long this member's lease lasts without a renewal (`--apiserver-lease-seconds`);
    /// it is renewed a third of that apart.
    pub apiserver_lease_duration: Duration,
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
            encryption_provider_config: None,
            inflight: InflightLimits::default(),
            audit_log: None,
            tls: None,
            insecure_http: None,
            token_auth_file: None,
            cluster_signing_duration: certificates::DEFAULT_SIGNING_DURATION,
            advertise_address: None,
            apiserver_lease_duration: apiserver_lease::DEFAULT_LEASE_DURATION,
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
    /// Plain HTTP is served on loopback addresses only.
    #[error("plain HTTP serves loopback addresses only, and {addr} is not one (serve TLS, or use 127.0.0.1 or ::1)")]
    NotLoopback { addr: SocketAddr },
    #[error("TLS: {0}")]
    Tls(#[from] pki::PkiError),
    #[error("the client for agents' listeners: {0}")]
    AgentClient(#[source] reqwest::Error),
    #[error("store: {0}")]
    Store(#[from] skiff_raft_store::StoreError),
    #[error(transparent)]
    Encryption(#[from] encryption::EncryptionError),
    #[error(transparent)]
    TokenFile(#[from] token_file::TokenFileError),
    #[error(transparent)]
    AuditLog(#[from] http::audit::AuditLogError),
    #[error("the store did not elect itself and create the system namespaces within 10 s")]
    FirstTerm,
}

/// Entry point of a control-plane member.
pub struct Server;

impl Server {
    /// Opens the store, starts the API server, the controllers and the scheduler.
    pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let plain = match &config.tls {
            Some(_) => config.insecure_http.into_iter().collect::<Vec<_>>(),
            None => [config.listen]
                .into_iter()
                .chain(config.insecure_http)
                .collect(),
        };
        if let Some(addr) = plain.iter().find(|addr| !addr.ip().is_loopback()) {
            return Err(ServerError::NotLoopback { addr: *addr });
        }
        let static_tokens = match &config.token_auth_file {
            Some(path) => token_file::StaticTokens::load(path)?,
            None => token_file::StaticTokens::default(),
        };
        let tls_config = match &config.tls {
            Some(tls) => Some(tls.server_config()?),
            None => None,
        };
        let (listener, local_addr) = bind(config.listen).await?;
        let insecure = match config.insecure_http.filter(|_| config.tls.is_some()) {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let lone = config.cluster.members.len() == 1 && config.join.is_none();
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
        let shutdown = CancellationToken::new();
        let ca_key = config.tls.as_ref().map(|tls| tls.ca().key_der());
        let encryption = encryption::start(
            &config.data_dir,
            config.encryption_provider_config.as_deref(),
            lone,
            &store,
            ca_key.as_deref(),
            &shutdown,
        )
        .await?;
        let metrics = Arc::new(metrics::Metrics::new(&store));
        let tokens = config
            .tls
            .as_ref()
            .map(|tls| serviceaccount::TokenIssuer::new(tls.service_account_key()));
        let registry = Registry::new(store.clone())
            .with_service_ranges(config.service_ranges)
            .with_encryption(encryption.clone())
            .with_tokens(tokens.clone());

        let (bootstrapped, mut first_term) = watch::channel(false);
        let signing = match &config.tls {
            Some(tls) => Some(certificates::Signing {
                ca: Arc::new(pki::ClusterCa::load(tls.dir())?.ok_or_else(|| {
                    pki::PkiError::Invalid {
                        path: tls.dir().to_path_buf(),
                        what: "cluster CA directory",
                        reason: "ca.crt and ca.key are gone".into(),
                    }
                })?),
                max_duration: config.cluster_signing_duration,
            }),
            None => None,
        };
        let leading = leadership::spawn(
            store.clone(),
            config.service_ranges,
            encryption,
            signing,
            controllers::Settings {
                node_grace: config.node_grace,
                pod_cidrs: config.pod_cidrs,
                cluster_ca: config.tls.as_ref().map(|tls| Arc::from(tls.ca_pem())),
                tokens,
                metrics: metrics.clone(),
            },
            shutdown.clone(),
            bootstrapped,
        );
        let advertised = apiserver_lease::advertised_address(config.advertise_address, local_addr);
        let publishing = apiserver_lease::spawn_publisher(
            registry.clone(),
            config.name.clone(),
            advertised,
            config.apiserver_lease_duration,
            shutdown.clone(),
        );
        // The membership the store runs with (a cluster started alone may have grown since).
        if store.cluster().members.len() == 1 {
            // A lone member leads at once: serve only when the system namespaces exist.
            tokio::time::timeout(FIRST_TERM_WAIT, first_term.wait_for(|done| *done))
                .await
                .map_err(|_| ServerError::FirstTerm)?
                .map_err(|_| ServerError::FirstTerm)?;
        }

        let audit = match &config.audit_log {
            Some(path) => Some(http::audit::AuditLog::open(path).await?),
            None => None,
        };
        // The OpenAPI documents (and the schemas field validation walks) are built off the
        // request path, so that neither the first write nor the first kubectl waits for them.
        tokio::task::spawn_blocking(|| {
            let documents = openapi::documents();
            let (index, v3, v2, v2_protobuf) = documents.sizes();
            tracing::debug!(
                build_time = ?documents.build_time,
                index, v3, v2, v2_protobuf,
                "OpenAPI documents built (bytes)"
            );
        });
        let authorizer = authz::Authorizer::start(&registry, &shutdown);
        // Its informers read this member's store: the first list is immediate.
        let _ = tokio::time::timeout(FIRST_TERM_WAIT, authorizer.synced()).await;
        let agent_tls = match &config.tls {
            Some(tls) => Some(pki::agent_client_config(tls)?),
            None => None,
        };
        let app = http::router(http::AppState {
            registry,
            http: http::agent_conn::agent_http(agent_tls.as_ref())
                .map_err(ServerError::AgentClient)?,
            agent_tls,
            tunnels: skiff_net::tunnel::Tunnels::new(),
            shutdown: shutdown.clone(),
            inflight: http::inflight::Inflight::new(config.inflight),
            audit,
            authorizer,
            cluster_ca: config.tls.as_ref().map(|tls| Arc::from(tls.ca_pem())),
            static_tokens: Arc::new(static_tokens),
            metrics,
        });
        let insecure_addr = insecure.as_ref().map(|(_, addr)| *addr);
        let insecure_serving = insecure.map(|(listener, _)| {
            tokio::spawn(skiff_net::http::serve(
                listener,
                app.clone(),
                config.connections,
                shutdown.clone(),
            ))
        });
        let serving = match tls_config {
            Some(tls) => tokio::spawn(skiff_net::http::serve_tls(
                listener,
                app,
                tls,
                config.connections,
                shutdown.clone(),
            )),
            None => tokio::spawn(skiff_net::http::serve(
                listener,
                app,
                config.connections,
                shutdown.clone(),
            )),
        };
        tracing::info!(name = %config.name, %local_addr, "control plane started");
        Ok(ServerHandle {
            scheme: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            insecure_addr,
            insecure_serving,
            local_addr,
            shutdown,
            serving,
            leading,
            publishing,
            store,
        })
    }
}

/// Binds `addr`; returns the listener and the address it got.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let failed = |source| ServerError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
    let local_addr = listener.local_addr().map_err(failed)?;
    Ok((listener, local_addr))
}

/// A running control-plane member.
pub struct ServerHandle {
    /// Where the API actually listens.
    pub local_addr: SocketAddr,
    /// `https`, or `http` for a server without TLS.
    scheme: &'static str,
    /// Where the `--insecure-http` listener actually listens.
    pub insecure_addr: Option<SocketAddr>,
    insecure_serving: Option<JoinHandle<()>>,
    /// Cancelled on shutdown: ends open watches, the API server and the leader's work.
    shutdown: CancellationToken,
    serving: JoinHandle<()>,
    leading: JoinHandle<()>,
    /// Renews this member's lease.
    publishing: JoinHandle<()>,
    store: Store,
}

impl ServerHandle {
    /// The API base URL, e.g. `https://127.0.0.1:6443`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
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
        if let Some(insecure) = self.insecure_serving {
            let _ = insecure.await;
        }
        let _ = self.leading.await;
        let _ = self.publishing.await;
        self.store.shutdown().await;
    }
}
