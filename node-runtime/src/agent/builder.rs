//! Configuring an [`Agent`]: servers and credentials, runtimes and images, what the node
//! offers, and the defaults of each.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use skiff_client::Client;

use super::image_gc::ImageGcPolicy;
use super::{
    Agent, AgentError, Backoff, ClusterDns, ConnLimits, EventLimits, Eviction, Heartbeats,
    IngressListen, PodNetworkMode, ProxyMode, DEFAULT_MAX_CONNECTIONS,
};
use crate::runtime::images::DEFAULT_MAX_IMAGE_SIZE;
use crate::runtime::{ContainerRuntime, FileImages, ImageService, ImageStore, RuntimeSet};

/// Configures an [`Agent`].
pub struct AgentBuilder {
    servers: Vec<String>,
    client: Option<Client>,
    token: Option<String>,
    node_name: Option<String>,
    data_dir: Option<PathBuf>,
    local_path_root: Option<PathBuf>,
    local_storage: bool,
    listen: Option<SocketAddr>,
    cluster_ca: Option<Vec<u8>>,
    node_ip: Option<IpAddr>,
    tunnel: bool,
    connections: ConnLimits,
    runtimes: RuntimeSet,
    images: Option<Arc<dyn ImageService>>,
    image_gc: Option<ImageGcPolicy>,
    image_dirs: Vec<PathBuf>,
    max_image_size: u64,
    insecure_registries: Vec<String>,
    labels: BTreeMap<String, String>,
    capacity: Option<(u64, u64, u32)>,
    max_pods: Option<u32>,
    max_map_count: Option<u64>,
    reserved: (u64, u64),
    default_memory: Option<u64>,
    eviction: Option<Eviction>,
    heartbeat: Heartbeats,
    backoff: Backoff,
    events: EventLimits,
    pod_network: PodNetworkMode,
    proxy: ProxyMode,
    ingress: IngressListen,
    cluster_dns: ClusterDns,
}

impl AgentBuilder {
    /// The defaults each method names.
    pub(super) fn new() -> Self {
        AgentBuilder {
            servers: Vec::new(),
            client: None,
            token: None,
            node_name: None,
            data_dir: None,
            local_path_root: None,
            local_storage: true,
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            cluster_ca: None,
            node_ip: None,
            tunnel: true,
            connections: ConnLimits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                ..ConnLimits::default()
            },
            runtimes: RuntimeSet::default(),
            images: None,
            image_gc: None,
            image_dirs: Vec::new(),
            max_image_size: DEFAULT_MAX_IMAGE_SIZE,
            insecure_registries: Vec::new(),
            labels: BTreeMap::new(),
            capacity: None,
            max_pods: None,
            max_map_count: None,
            reserved: (0, 0),
            default_memory: None,
            eviction: None,
            heartbeat: Heartbeats::default(),
            backoff: Backoff::default(),
            events: EventLimits::default(),
            pod_network: PodNetworkMode::Host,
            proxy: ProxyMode::None,
            ingress: IngressListen::default(),
            cluster_dns: ClusterDns::default(),
        }
    }

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

    /// The Node's name (required).
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// Where pod logs and runtime state live.
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Where local-path PersistentVolumes of this node live; default `<data_dir>/storage`.
    pub fn local_path_root(mut self, dir: PathBuf) -> Self {
        self.local_path_root = Some(dir);
        self
    }

    /// Offer no local storage: no local-path root is reported or swept (simulated nodes).
    pub fn without_local_storage(mut self) -> Self {
        self.local_storage = false;
        self
    }

    /// The kubelet endpoint (logs, exec, images; HTTPS, see `cluster_ca`); port 0 picks a
    /// free one. Default `127.0.0.1:0`. Servers use it only for a node that has no tunnel
    /// open to them.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The cluster CA (PEM). The kubelet endpoint serves HTTPS only, with a serving
    /// certificate from this CA and to clients with certificates from it: without the CA (or
    /// without a node client certificate in `client`) the agent has no listener.
    pub fn cluster_ca(mut self, ca_pem: Vec<u8>) -> Self {
        self.cluster_ca = Some(ca_pem);
        self
    }

    /// No kubelet endpoint at all: the servers reach the agent through the tunnels it opens
    /// to them, so a node behind NAT or a firewall needs no open port.
    pub fn without_listener(mut self) -> Self {
        self.listen = None;
        self
    }

    /// The node's address (its `InternalIP`, the pods' `hostIP`, where ingress listens);
    /// default: the kubelet endpoint's address, else `127.0.0.1`.
    pub fn node_ip(mut self, ip: IpAddr) -> Self {
        self.node_ip = Some(ip);
        self
    }

    /// Open no tunnels to the servers (simulated nodes, thousands to one process): the
    /// servers reach the agent through its listener alone.
    pub fn without_tunnel(mut self) -> Self {
        self.tunnel = false;
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

    /// When the node's own image store is garbage collected; default: the kubelet's
    /// [`ImageGcPolicy::default`]. Not applied to an image service given with
    /// [`images`](Self::images) unless set.
    pub fn image_gc(mut self, policy: ImageGcPolicy) -> Self {
        self.image_gc = Some(policy);
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

    /// How many pods the node runs at most (the kubelet's `--max-pods`), whatever
    /// [`capacity`](Self::capacity) says; default 110.
    pub fn max_pods(mut self, pods: u32) -> Self {
        self.max_pods = Some(pods);
        self
    }

    /// The memory mappings the agent's process may hold (`vm.max_map_count`, as `skiff agent`
    /// sets it for a node that runs Wasm guests in its process): pods are refused with
    /// `OutOfmappings` while a reserve is still free. Default: not checked.
    pub fn max_map_count(mut self, mappings: u64) -> Self {
        self.max_map_count = Some(mappings);
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

    /// How often the node heartbeats (default: as the kubelet, a 40 s Lease renewed every
    /// 10 s, and the Node status written on change or else every 5 minutes).
    pub fn heartbeat(mut self, every: Heartbeats) -> Self {
        self.heartbeat = every;
        self
    }

    /// Restart backoff (default: Kubernetes' 10 s doubling to 5 min).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How fast pod events are sent (default: the kubelet's 50 a second, bursts of 100).
    pub fn event_limits(mut self, limits: EventLimits) -> Self {
        self.events = limits;
        self
    }

    /// How pods are networked; default [`PodNetworkMode::Host`] (the node's network). With
    /// [`PodNetworkMode::Bridge`] the agent waits for its Node's pod CIDR and needs
    /// `CAP_NET_ADMIN`.
    pub fn pod_network(mut self, mode: PodNetworkMode) -> Self {
        self.pod_network = mode;
        self
    }

    /// Whether the node proxies Services; default [`ProxyMode::None`]. With
    /// [`ProxyMode::Userspace`] the agent holds ClusterIPs on a dummy link and needs
    /// `CAP_NET_ADMIN`.
    pub fn proxy(mut self, mode: ProxyMode) -> Self {
        self.proxy = mode;
        self
    }

    /// Where the node serves the cluster's Ingresses (of class `skiff`) over HTTP and HTTPS;
    /// default: nowhere.
    pub fn ingress(mut self, listen: IngressListen) -> Self {
        self.ingress = listen;
        self
    }

    /// The cluster DNS address and domain, and whether this node serves it; default: not
    /// served, at 10.43.0.10 and `cluster.local`. With [`DnsMode::NodeLocal`](super::DnsMode)
    /// the agent answers on ADDRESS:53 once the node proxy holds the address (the `kube-dns`
    /// Service's ClusterIP), and `ClusterFirst` pods use it.
    pub fn cluster_dns(mut self, dns: ClusterDns) -> Self {
        self.cluster_dns = dns;
        self
    }

    /// The agent, or which required option is missing.
    pub fn build(self) -> Result<Agent, AgentError> {
        let client = match self.client {
            Some(client) => client,
            None => Client::new(&self.servers)?,
        };
        if self.runtimes.is_empty() {
            return Err(AgentError::Missing("runtime"));
        }
        let data_dir = self.data_dir.ok_or(AgentError::Missing("data_dir"))?;
        let own_store = self.images.is_none();
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
            local_path_root: self.local_storage.then(|| {
                self.local_path_root
                    .unwrap_or_else(|| data_dir.join("storage"))
            }),
            data_dir,
            listen: self.listen,
            cluster_ca: self.cluster_ca,
            node_ip: self.node_ip,
            tunnel: self.tunnel,
            connections: self.connections,
            runtimes: self.runtimes,
            images,
            image_gc: self.image_gc.or(own_store.then(ImageGcPolicy::default)),
            labels: self.labels,
            capacity: {
                let (cpu_millis, memory_bytes, pods) =
                    self.capacity.unwrap_or_else(detect_capacity);
                (cpu_millis, memory_bytes, self.max_pods.unwrap_or(pods))
            },
            max_map_count: self.max_map_count,
            reserved: self.reserved,
            default_memory: self.default_memory,
            eviction: self.eviction,
            heartbeat: self.heartbeat,
            backoff: self.backoff,
            events: self.events,
            pod_network: self.pod_network,
            proxy: self.proxy,
            ingress: self.ingress,
            cluster_dns: self.cluster_dns,
        })
    }
}

/// This machine's cores, memory, and Kubernetes' default of 110 pods.
fn detect_capacity() -> (u64, u64, u32) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let memory = super::eviction::meminfo_bytes("MemTotal").unwrap_or(1 << 30);
    (cores * 1000, memory, 110)
}
