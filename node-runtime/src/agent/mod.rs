//! The node agent (a kubelet as a library): registers a Node, keeps it Ready, runs the pods
//! bound to it, each on one of its runtimes (chosen by the pod's RuntimeClass, else by what
//! its images are), pulls images through one image service, and serves the pods' logs.
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
mod container_config;
mod env;
mod events;
mod eviction;
mod lease;
mod lifecycle;
mod log_index;
mod log_server;
mod node;
mod pod_dirs;
mod pod_failure;
mod pods;
mod publish;
mod pull_policy;
mod pull_secrets;
mod reasons;
mod record;
mod recovery;
mod runtime_choice;
mod sandbox;
mod start;
mod status;
mod teardown;
mod volumes;
mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::requests::Resources;
use skiff_api::runtime_class;
use skiff_client::Client;
pub use skiff_net::ConnLimits;
use tokio_util::sync::CancellationToken;

pub use eviction::{Eviction, MemorySource};
pub use pull_secrets::{auth_in_config, registry_of};
pub use skiff_api::backoff::Backoff;

use crate::runtime::images::{FileImageError, DEFAULT_MAX_IMAGE_SIZE};
use crate::runtime::{
    ContainerRuntime, FileImages, ImageService, ImageStore, RuntimeError, RuntimeSet,
};

/// Connections the kubelet endpoint (logs) serves at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default pause between lease renewals (the control plane's node grace is a few of these).
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Lease renewals between two full Node status reports.
const STATUS_EVERY: u64 = 5;
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
    #[error("file: images: {0}")]
    FileImages(#[from] FileImageError),
}

/// Configures an [`Agent`].
pub struct AgentBuilder {
    servers: Vec<String>,
    client: Option<Client>,
    token: Option<String>,
    node_name: Option<String>,
    data_dir: Option<PathBuf>,
    listen: SocketAddr,
    connections: ConnLimits,
    runtimes: RuntimeSet,
    images: Option<Arc<dyn ImageService>>,
    image_dirs: Vec<PathBuf>,
    max_image_size: u64,
    insecure_registries: Vec<String>,
    labels: BTreeMap<String, String>,
    capacity: Option<(u64, u64, u32)>,
    reserved: (u64, u64),
    default_memory: Option<u64>,
    eviction: Option<Eviction>,
    heartbeat: Duration,
    backoff: Backoff,
}

/// A configured node agent; `run` it.
pub struct Agent {
    client: Client,
    node_name: String,
    data_dir: PathBuf,
    listen: SocketAddr,
    connections: ConnLimits,
    runtimes: RuntimeSet,
    images: Arc<dyn ImageService>,
    labels: BTreeMap<String, String>,
    capacity: (u64, u64, u32),
    reserved: (u64, u64),
    default_memory: Option<u64>,
    eviction: Option<Eviction>,
    heartbeat: Duration,
    backoff: Backoff,
}

impl Agent {
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            servers: Vec::new(),
            client: None,
            token: None,
            node_name: None,
            data_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            connections: ConnLimits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                ..ConnLimits::default()
            },
            runtimes: RuntimeSet::default(),
            images: None,
            image_dirs: Vec::new(),
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            insecure_registries: Vec::new(),
            labels: BTreeMap::new(),
            capacity: None,
            reserved: (0, 0),
            default_memory: None,
            eviction: None,
            heartbeat: HEARTBEAT,
            backoff: Backoff::default(),
        }
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
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| AgentError::Listen {
                addr: self.listen,
                source,
            })?;
        let kubelet = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: self.listen,
            source,
        })?;
        let pods_dir = self.data_dir.join("pods");
        let logs = Arc::new(log_index::LogIndex::default());
        let server = log_server::router(log_server::LogServerState {
            index: logs.clone(),
        });
        tokio::spawn(skiff_net::http::serve(
            listener,
            server,
            self.connections,
            stop.clone(),
        ));

        let (cpu_millis, memory_bytes, pods) = self.capacity;
        let allocatable = self.allocatable();
        let memory_pressure = Arc::new(eviction::MemoryPressure::default());
        let spec = node::NodeSpec {
            name: self.node_name.clone(),
            labels: node_labels(&self.labels, &self.runtimes),
            cpu_millis,
            memory_bytes,
            pods,
            allocatable,
            kubelet,
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
        tracing::info!(node = %self.node_name, %kubelet, "node registered");
        let survivors = recovery::Survivors::collect(&self.runtimes).await?;

        let (client, heartbeat, beat_stop) = (self.client.clone(), self.heartbeat, stop.clone());
        let beat_spec = spec.clone();
        tokio::spawn(async move {
            for beat in 0u64.. {
                if let Err(err) = lease::renew(&client, &beat_spec.name).await {
                    tracing::warn!(%err, "node lease renewal failed");
                }
                if beat > 0 && beat % STATUS_EVERY == 0 {
                    if let Err(err) = node::heartbeat(&client, &beat_spec).await {
                        tracing::warn!(%err, "node status report failed");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat) => {}
                    _ = beat_stop.cancelled() => return,
                }
            }
        });

        let ctx = Arc::new(worker::Context {
            events: events::Recorder {
                client: self.client.clone(),
                node: self.node_name.clone(),
            },
            client: self.client,
            images: self.images,
            runtimes: self.runtimes,
            node: self.node_name,
            host_ip: kubelet.ip().to_string(),
            pods_dir,
            backoff: self.backoff,
            logs,
            survivors,
            admission: Arc::new(admission::Admission::new(allocatable)),
            default_memory: self.default_memory,
            memory_pressure,
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

impl AgentBuilder {
    /// API server URLs; the client fails over between them.
    pub fn servers(mut self, servers: Vec<String>) -> Self {
        self.servers = servers;
        self
    }

    /// An API client to share with other agents in this process (its connection pool too),
    /// instead of one made from `servers`; the hollow-node benchmark runs thousands this way.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The join token (`skiff token create`) that lets this node register and heartbeat.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// Where pod logs and runtime state live.
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// The kubelet endpoint (logs); port 0 picks a free one. Default `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// How many connections the kubelet endpoint serves at once and how long they may sit
    /// idle; default: 256 connections, the default idle timeout.
    pub fn connections(mut self, limits: ConnLimits) -> Self {
        self.connections = limits;
        self
    }

    /// Adds a runtime (at least one is required). Pods name one through their RuntimeClass's
    /// handler (= the runtime's name); otherwise the first added that can run their images
    /// runs them.
    pub fn runtime(mut self, runtime: Arc<dyn ContainerRuntime>) -> Self {
        self.runtimes.push(runtime);
        self
    }

    /// The node's image service; default: an [`ImageStore`] in `<data_dir>/images`.
    pub fn images(mut self, images: Arc<dyn ImageService>) -> Self {
        self.images = Some(images);
        self
    }

    /// Allows `file:` images from regular files in `dir` and below (repeatable; resolved
    /// when the agent is built). Without any, the default image store pulls no `file:`
    /// images. Ignored when [`images`](Self::images) supplies the image service.
    pub fn allow_image_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.image_dirs.push(dir.into());
        self
    }

    /// Reaches the registry `host:port` over plain HTTP (repeatable); loopback registries
    /// always are, every other one over HTTPS. Ignored when [`images`](Self::images)
    /// supplies the image service.
    pub fn insecure_registry(mut self, registry: impl Into<String>) -> Self {
        self.insecure_registries.push(registry.into());
        self
    }

    /// The largest image (a `file:` image, a registry module) the default image store takes,
    /// in bytes (default 256 MiB).
    pub fn max_image_size(mut self, bytes: u64) -> Self {
        self.max_image_size = bytes;
        self
    }

    /// Extra node labels.
    pub fn labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// What the node offers; default: this machine's cores and memory, 110 pods.
    pub fn capacity(mut self, cpu_millis: u64, memory_bytes: u64, pods: u32) -> Self {
        self.capacity = Some((cpu_millis, memory_bytes, pods));
        self
    }

    /// CPU (millicores) and memory (bytes) kept for the system, not offered to pods
    /// (`--system-reserved`); default none.
    pub fn system_reserved(mut self, cpu_millis: u64, memory_bytes: u64) -> Self {
        self.reserved = (cpu_millis, memory_bytes);
        self
    }

    /// The memory limit, in bytes, of containers that set none (LimitRange-style); default none.
    pub fn default_container_memory(mut self, bytes: Option<u64>) -> Self {
        self.default_memory = bytes;
        self
    }

    /// Evicts pods when the node's available memory falls below a threshold; default off.
    pub fn eviction(mut self, eviction: Eviction) -> Self {
        self.eviction = Some(eviction);
        self
    }

    /// Pause between lease renewals (default 2 s); the Node status is reported every fifth.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every;
        self
    }

    /// Restart backoff (default: Kubernetes' 10 s doubling to 5 min).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn build(self) -> Result<Agent, AgentError> {
        let client = match self.client {
            Some(client) => client,
            None => Client::new(&self.servers)?,
        };
        if self.runtimes.is_empty() {
            return Err(AgentError::Missing("runtime"));
        }
        let data_dir = self.data_dir.ok_or(AgentError::Missing("data_dir"))?;
        let images = match self.images {
            Some(images) => images,
            None => {
                let mut files = FileImages::default().max_size(self.max_image_size);
                for dir in &self.image_dirs {
                    files = files.allow_dir(dir)?;
                }
                tracing::info!(dirs = ?files.allowed_dirs(), "file: images allowed from");
                Arc::new(
                    ImageStore::open(data_dir.join("images"))?
                        .with_file_images(files)
                        .with_insecure_registries(self.insecure_registries),
                )
            }
        };
        Ok(Agent {
            client: match &self.token {
                Some(token) => client.with_token(token),
                None => client,
            },
            node_name: self.node_name.ok_or(AgentError::Missing("node_name"))?,
            data_dir,
            listen: self.listen,
            connections: self.connections,
            runtimes: self.runtimes,
            images,
            labels: self.labels,
            capacity: self.capacity.unwrap_or_else(detect_capacity),
            reserved: self.reserved,
            default_memory: self.default_memory,
            eviction: self.eviction,
            heartbeat: self.heartbeat,
            backoff: self.backoff,
        })
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

/// This machine's cores, memory, and Kubernetes' default of 110 pods.
fn detect_capacity() -> (u64, u64, u32) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let memory = eviction::meminfo_bytes("MemTotal").unwrap_or(1 << 30);
    (cores * 1000, memory, 110)
}
