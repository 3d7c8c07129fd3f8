//! The node agent (a kubelet as a library): registers a Node, keeps it Ready, runs the pods
//! bound to it, each on one of its runtimes (chosen by the pod's RuntimeClass, else by what
//! its images are), pulls images through one image service, and serves the pods' logs, exec
//! into their containers, the node's images and its resource usage (`/containerLogs`,
//! `/exec`, `/images`, `/metrics/cadvisor`, `/metrics/resource`, `/stats/summary`) to the
//! API servers through the tunnel it keeps open to each, and on its listener if it has one
//! (HTTPS, authenticated and authorized as the kubelet's: `secure_listener`).
//!
//! ```no_run
//! # async fn example() -> Result<(), skiff_node_runtime::agent::AgentError> {
//! use std::sync::Arc;
//! use skiff_node_runtime::agent::Agent;
//! use skiff_node_runtime::runtime::wasm::WasmRuntime;
//!
//! let wasm = Arc::new(WasmRuntime::new("/var/lib/my-node/wasm".into())?);
//! Agent::builder()
//!     .servers(vec!["http://127.0.0.1:6443".into()])
//!     .token("abcdef.0123456789abcdef") // from `skiff token create`
//!     .node_name("edge-1")
//!     .data_dir("/var/lib/my-node".into())
//!     .allow_image_dir("/srv/guests") // file: images come only from here
//!     .runtime(wasm) // more runtimes: call .runtime(...) again
//!     .build()?
//!     .run(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```

mod admission;
mod api_servers;
mod builder;
mod cert_rotation;
mod container_config;
pub mod credentials;
mod dns;
mod env;
mod events;
mod eviction;
mod exec_pump;
mod exec_server;
mod heartbeat;
mod host_ports;
mod image_gc;
mod image_server;
mod ingress;
mod lease;
mod lifecycle;
mod local_path;
mod log_index;
mod log_server;
mod mappings;
mod network;
mod node;
mod pod_dirs;
mod pod_failure;
mod pods;
mod port_forward_server;
mod pre_stop;
mod probes;
mod probing;
mod proxy;
mod publish;
mod pull_policy;
mod pull_secrets;
mod reasons;
mod record;
mod recovery;
mod runtime_choice;
mod sandbox;
mod secure_listener;
mod service_env;
mod source_watch;
mod start;
mod status;
mod teardown;
mod tunnel;
mod usage;
mod volume_setup;
mod volumes;
mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::requests::Resources;
use skiff_api::{runtime_class, storage};
use skiff_client::Client;
pub use skiff_net::ConnLimits;
use tokio_util::sync::CancellationToken;

pub use builder::AgentBuilder;
pub use dns::{ClusterDns, DnsMode};
pub use events::EventLimits;
pub use eviction::{Eviction, MemorySource};
pub use heartbeat::Heartbeats;
pub use image_gc::ImageGcPolicy;
pub use ingress::IngressListen;
pub use mappings::{max_map_count, wasm_max_pods, wasm_max_pods_here};
pub use network::{NetworkError, PodNetworkMode, DEFAULT_BRIDGE};
pub use proxy::ProxyMode;
pub use pull_secrets::{auth_in_config, registry_of};
pub use skiff_api::backoff::Backoff;

use crate::runtime::images::FileImageError;
use crate::runtime::{ImageService, RuntimeError, RuntimeSet};

/// Connections the kubelet endpoint (logs) serves at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// ConfigMap and Secret changes buffered for the pods' workers.
const SOURCE_CHANGES: usize = 1024;
/// Pause between registration attempts while the API is unreachable.
const REGISTER_RETRY: Duration = Duration::from_secs(1);

/// Why an agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent option {0} is required")]
    Missing(&'static str),
    #[error("API client: {0}")]
    Client(#[from] skiff_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("registering the node: {0}")]
    Register(String),
    #[error("the cluster refused this node: {0}")]
    Refused(String),
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("local-path storage root {path}: {source}")]
    LocalPathRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file: images: {0}")]
    FileImages(#[from] FileImageError),
    #[error("pod network: {0}")]
    Network(#[from] NetworkError),
}

/// A configured node agent; `run` it.
pub struct Agent {
    client: Client,
    node_name: String,
    data_dir: PathBuf,
    /// Where local-path volumes live; `None`: this node offers no local storage.
    local_path_root: Option<PathBuf>,
    /// `None`: no listener; the servers reach the agent through its tunnels alone.
    listen: Option<SocketAddr>,
    /// The cluster CA (PEM): the listener serves HTTPS only, and needs it (and the node's own
    /// client certificate) to run.
    cluster_ca: Option<Vec<u8>>,
    /// The node's address (`InternalIP`); default: the listener's, else loopback.
    node_ip: Option<IpAddr>,
    /// Keep a tunnel open to each server.
    tunnel: bool,
    connections: ConnLimits,
    runtimes: RuntimeSet,
    images: Arc<dyn ImageService>,
    /// `None`: images are never collected.
    image_gc: Option<ImageGcPolicy>,
    labels: BTreeMap<String, String>,
    capacity: (u64, u64, u32),
    /// The process's mapping limit admission keeps pods under.
    max_map_count: Option<u64>,
    reserved: (u64, u64),
    default_memory: Option<u64>,
    eviction: Option<Eviction>,
    heartbeat: Heartbeats,
    backoff: Backoff,
    /// How fast pod events are sent.
    events: EventLimits,
    pod_network: PodNetworkMode,
    proxy: ProxyMode,
    ingress: IngressListen,
    cluster_dns: ClusterDns,
}

impl Agent {
    /// A builder with the defaults each of its methods names.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::new()
    }

    /// Registers the node and runs its pods until `shutdown` resolves; then stops them.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let stop = CancellationToken::new();
        let cancel = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            cancel.cancel();
        });
        let listen = match (self.listen, &self.cluster_ca, self.client.identity()) {
            (Some(addr), Some(_), Some(_)) => Some(addr),
            (Some(addr), _, _) => {
                tracing::warn!(
                    %addr,
                    "no listener: it serves HTTPS only, which needs the cluster CA and the \
                     node's own client certificate; the servers reach this node through its \
                     tunnels"
                );
                None
            }
            (None, _, _) => None,
        };
        let listener = match listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.and_then(|l| {
                let bound = l.local_addr()?;
                Ok((l, bound))
            }))
            .transpose()
            .map_err(|source| AgentError::Listen { addr, source })?,
            None => None,
        };
        let node_ip = self
            .node_ip
            .or(listener.as_ref().map(|(_, bound)| bound.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let kubelet_port = listener.as_ref().map_or(0, |(_, bound)| bound.port());
        let pods_dir = self.data_dir.join("pods");
        let logs = Arc::new(log_index::LogIndex::default());
        let server = log_server::router(log_server::LogServerState {
            index: logs.clone(),
        })
        .merge(image_server::router(image_server::ImageServerState {
            images: self.images.clone(),
            runtimes: self.runtimes.clone(),
        }))
        .merge(exec_server::router(exec_server::ExecServerState {
            index: logs.clone(),
            runtimes: self.runtimes.clone(),
        }))
        .merge(port_forward_server::router(
            port_forward_server::PortForwardState {
                index: logs.clone(),
                runtimes: self.runtimes.clone(),
            },
        ));
        let usage = Arc::new(usage::UsageReader::new(
            self.node_name.clone(),
            self.runtimes.clone(),
            logs.clone(),
            stop.clone(),
        ));
        let server = server.merge(usage::router(usage));
        let listening = server.clone();
        if self.tunnel {
            tunnel::start(&self.client, &self.node_name, server, &stop);
        }
        if let Some(policy) = self.image_gc {
            let gc = image_gc::ImageGc::new(
                self.images.clone(),
                self.runtimes.clone(),
                self.data_dir.join("images"),
                policy,
            );
            tokio::spawn(gc.run(stop.clone()));
        }

        let local_path_root = match &self.local_path_root {
            Some(root) => Some(local_path::prepare_root(root)?),
            None => None,
        };
        let (cpu_millis, memory_bytes, pods) = self.capacity;
        let allocatable = self.allocatable();
        let memory_pressure = Arc::new(eviction::MemoryPressure::default());
        let spec = node::NodeSpec {
            name: self.node_name.clone(),
            labels: node_labels(&self.labels, &self.runtimes),
            annotations: local_path_root
                .iter()
                .map(|root| {
                    (
                        storage::LOCAL_PATH_ROOT_ANNOTATION.to_string(),
                        root.display().to_string(),
                    )
                })
                .collect(),
            cpu_millis,
            memory_bytes,
            pods,
            allocatable,
            node_ip,
            kubelet_port,
            runtime_version: self
                .runtimes
                .iter()
                .map(|r| r.version())
                .collect::<Vec<_>>()
                .join(","),
            runtime_handlers: self.runtimes.iter().map(|r| r.name().to_string()).collect(),
            ready_since: status::now(),
            memory_pressure: memory_pressure.clone(),
        };
        loop {
            match node::register(&self.client, &spec).await {
                Ok(()) => break,
                Err(err @ AgentError::Refused(_)) => return Err(err),
                Err(err) => {
                    tracing::warn!(%err, "node registration failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(REGISTER_RETRY) => {}
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
        tracing::info!(node = %self.node_name, %node_ip, kubelet_port, "node registered");
        // After registration: the serving certificate is approved for the Node's addresses.
        if let (Some((listener, _)), Some(ca_pem)) = (listener, self.cluster_ca.clone()) {
            let setup = secure_listener::Setup {
                client: self.client.clone(),
                ca_pem,
                node: self.node_name.clone(),
                names: vec![node_ip.to_string(), self.node_name.clone()],
                data_dir: self.data_dir.clone(),
                limits: self.connections,
            };
            let stop = stop.clone();
            tokio::spawn(async move {
                if let Err(err) = secure_listener::serve(setup, listener, listening, stop).await {
                    tracing::error!(%err, "the node's listener is off");
                }
            });
        }
        if let Some(root) = local_path_root {
            tokio::spawn(local_path::sweep_loop(
                self.client.clone(),
                root,
                stop.clone(),
            ));
        }
        let survivors = recovery::Survivors::collect(&self.runtimes).await?;

        heartbeat::spawn(
            self.client.clone(),
            spec.clone(),
            self.heartbeat,
            stop.clone(),
        );

        // After the heartbeat starts: the node stays Ready while it waits for its pod CIDR.
        let network = match &self.pod_network {
            PodNetworkMode::Host => None,
            PodNetworkMode::Bridge {
                bridge,
                cluster_cidr,
            } => {
                let Some(cidr) =
                    network::wait_for_pod_cidr(&self.client, &self.node_name, &stop).await
                else {
                    return Ok(());
                };
                let node = self.node_name.clone();
                let started = network::PodNetworks::start(
                    &cidr,
                    bridge,
                    *cluster_cidr,
                    self.client.clone(),
                    node,
                    stop.clone(),
                )
                .await;
                match started {
                    Ok(networks) => Some(networks),
                    Err(err) => {
                        // No pods can run here: stop heartbeating too.
                        stop.cancel();
                        return Err(err.into());
                    }
                }
            }
        };
        if self.proxy == ProxyMode::Userspace {
            if let Err(err) =
                proxy::start(self.client.clone(), self.node_name.clone(), stop.clone()).await
            {
                stop.cancel();
                return Err(err.into());
            }
        }
        ingress::start(self.client.clone(), self.ingress, node_ip, stop.clone()).await;
        if self.cluster_dns.mode == DnsMode::NodeLocal {
            dns::start(self.client.clone(), &self.cluster_dns, stop.clone());
        }
        let ctx = Arc::new(worker::Context {
            tokens: volumes::TokenCache::default(),
            source_changes: source_watch::SourceWatch::new(
                self.client.clone(),
                SOURCE_CHANGES,
                stop.clone(),
            ),
            events: events::Recorder::start(
                self.client.clone(),
                self.node_name.clone(),
                self.events,
                stop.clone(),
            ),
            client: self.client,
            images: self.images,
            runtimes: self.runtimes,
            node: self.node_name,
            host_ip: node_ip.to_string(),
            pods_dir,
            backoff: self.backoff,
            logs,
            survivors,
            admission: Arc::new(match self.max_map_count {
                Some(limit) => admission::Admission::new(allocatable)
                    .with_mappings(mappings::MappingBudget::new(limit)),
                None => admission::Admission::new(allocatable),
            }),
            default_memory: self.default_memory,
            memory_pressure,
            network,
            node_dns: dns::node_resolvers(),
            cluster_dns: self.cluster_dns,
        });
        if let Some(config) = self.eviction {
            tokio::spawn(eviction::run(ctx.clone(), config, stop.clone()));
        }
        pods::run(ctx, stop).await;
        Ok(())
    }

    /// What pods may request: the capacity less the system reserve and, for memory, the hard
    /// eviction threshold too (as the kubelet computes it).
    fn allocatable(&self) -> Resources {
        let (cpu_millis, memory_bytes, pods) = self.capacity;
        let (reserved_cpu, reserved_memory) = self.reserved;
        let threshold = self.eviction.map_or(0, |e| e.threshold);
        Resources {
            cpu_millis: cpu_millis.saturating_sub(reserved_cpu),
            memory_bytes: memory_bytes.saturating_sub(reserved_memory + threshold),
            pods: u64::from(pods),
        }
    }
}

/// The user's labels, each runtime's own, and `runtime.skiff.dev/<name>=true` per runtime
/// (what RuntimeClasses select nodes by).
fn node_labels(user: &BTreeMap<String, String>, runtimes: &RuntimeSet) -> BTreeMap<String, String> {
    let mut labels = user.clone();
    for runtime in runtimes.iter() {
        labels.extend(runtime.node_labels());
        labels.insert(runtime_class::node_label(runtime.name()), "true".into());
    }
    labels
}
