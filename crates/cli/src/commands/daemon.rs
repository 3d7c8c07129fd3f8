//! What the daemons (`skiff server --dev` and `skiff agent`) share: signals, the host's name,
//! the image and log flags and the Wasm node agent.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use skiff_node_runtime::agent::{
    Agent, AgentBuilder, ClusterDns, ConnLimits, DnsMode, ImageGcPolicy, IngressListen,
    PodNetworkMode, ProxyMode,
};
use skiff_node_runtime::runtime::logs::LogLimits;

use super::node_events::NodeEventArgs;
use super::node_heartbeat::NodeHeartbeatArgs;
use super::node_resources::NodeResourceArgs;
use super::node_runtimes::RuntimeArgs;

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

/// Where a node's `file:` images may come from.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Allow `file:` images from regular files in DIR and below (repeatable; symlinks are
    /// resolved first). A node agent allows none without it; `skiff server --dev` allows its
    /// working directory and the repository's `wasm-examples` unless it is given.
    #[arg(long = "allow-image-dir", value_name = "DIR")]
    pub allow_image_dirs: Vec<PathBuf>,
    /// The largest image the node takes (a `file:` image, a registry module), as a quantity
    /// (`256Mi`, `1Gi`).
    #[arg(long, default_value = "256Mi", value_parser = parse_size)]
    pub max_image_size: u64,
    /// Pull from the registry HOST:PORT over plain HTTP (repeatable). Loopback registries
    /// (127.0.0.0/8, localhost, ::1) always are; every other registry is reached over HTTPS.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// Remove unused images when the image store's filesystem is fuller than this percent
    /// (as the kubelet's flag).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub image_gc_high_threshold: u8,
    /// ... down to this percent.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
    /// Never remove an image the node first saw less than this long ago.
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse)]
    pub image_minimum_gc_age: Duration,
    /// How often the image store's disk use is checked.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse)]
    pub image_gc_period: Duration,
}

/// The flags of a node: its images, its container logs, what it keeps of its memory and how
/// its pods are networked.
#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub network: PodNetworkArgs,
    #[command(flatten)]
    pub images: ImageArgs,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub resources: NodeResourceArgs,
    #[command(flatten)]
    pub runtimes: RuntimeArgs,
    #[command(flatten)]
    pub heartbeat: NodeHeartbeatArgs,
    #[command(flatten)]
    pub events: NodeEventArgs,
}

/// How a node's pods are networked.
#[derive(Args, Debug)]
pub struct PodNetworkArgs {
    /// `bridge`: each pod gets its own network namespace and an IP of the node's pod CIDR on
    /// a bridge, with routes to the other nodes' CIDRs (needs root); `host`: pods share the
    /// node's network and report its address.
    #[arg(long, value_enum, default_value_t = PodNetworkKind::Bridge)]
    pub pod_network: PodNetworkKind,
    /// The bridge of `--pod-network bridge`.
    #[arg(long, default_value = skiff_node_runtime::agent::DEFAULT_BRIDGE, value_parser = parse_interface_name)]
    pub bridge_name: String,
    /// Pod traffic to destinations outside this CIDR is masqueraded (the server's
    /// `--cluster-cidr`; set by `skiff agent --cluster-cidr` and `skiff server --dev`).
    #[arg(skip)]
    pub cluster_cidr: Option<ipnet::Ipv4Net>,
    /// `userspace`: the agent listens on every Service's ClusterIP ports (held on a dummy
    /// link `skiff-svc`) and NodePorts and copies each connection to a ready endpoint; `none`:
    /// no Service data plane here. Default: userspace with `--pod-network bridge`, else none.
    #[arg(long, value_enum)]
    pub proxy: Option<ProxyKind>,
    /// Where the node serves the cluster's Ingresses (class `skiff`) over HTTP/1.1, as
    /// k3s's bundled ingress does; `none`: not at all.
    #[arg(long, default_value = "0.0.0.0:80", value_parser = parse_listen_or_none)]
    pub ingress_http_listen: ListenOrNone,
    /// Where the node serves the Ingresses' HTTPS (certificates from their TLS Secrets);
    /// `none`: not at all.
    #[arg(long, default_value = "0.0.0.0:443", value_parser = parse_listen_or_none)]
    pub ingress_https_listen: ListenOrNone,
    /// `node-local`: the agent answers DNS for the cluster's Services on the cluster DNS
    /// address, port 53, and `ClusterFirst` pods use it; `none`: pods use the node's
    /// resolvers. Default: node-local when the node proxy runs (it holds the address), else none.
    #[arg(long, value_enum)]
    pub dns: Option<DnsKind>,
    /// The cluster DNS address: the `kube-dns` Service's ClusterIP, which must match the
    /// servers' `--cluster-dns` (`skiff server --dev` passes its own; an agent defaults to
    /// 10.43.0.10, the servers' default for the default service range).
    #[arg(long, value_name = "IP")]
    pub cluster_dns: Option<Ipv4Addr>,
    /// The cluster's DNS domain: Services are `NAME.NAMESPACE.svc.DOMAIN`.
    #[arg(long, default_value = skiff_api::dns::DEFAULT_CLUSTER_DOMAIN, value_parser = parse_domain)]
    pub cluster_domain: String,
}

/// A listening address, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOrNone(pub Option<std::net::SocketAddr>);

pub fn parse_listen_or_none(text: &str) -> Result<ListenOrNone, String> {
    if text == "none" {
        return Ok(ListenOrNone(None));
    }
    text.parse()
        .map(|addr| ListenOrNone(Some(addr)))
        .map_err(|_| format!("{text:?}: expected ADDRESS:PORT (such as 0.0.0.0:80) or none"))
}

/// The values of `--dns`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsKind {
    /// The agent answers cluster DNS itself.
    NodeLocal,
    /// Pods use the node's resolvers.
    None,
}

/// A DNS domain: dot-separated labels of letters, digits and `-`, lower-cased.
fn parse_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_end_matches('.').to_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    ok.then_some(domain)
        .ok_or_else(|| format!("{text:?} is not a DNS domain such as cluster.local"))
}

/// The values of `--proxy`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    Userspace,
    None,
}

/// A Linux interface name: 1 to 15 bytes, no `/`, `:` or whitespace.
fn parse_interface_name(text: &str) -> Result<String, String> {
    let ok = (1..=15).contains(&text.len())
        && !text.contains(['/', ':'])
        && !text.chars().any(char::is_whitespace);
    ok.then(|| text.to_string()).ok_or_else(|| {
        format!("{text:?}: an interface name has 1 to 15 bytes, no '/', ':' or spaces")
    })
}

/// The values of `--pod-network`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodNetworkKind {
    Bridge,
    Host,
}

impl PodNetworkArgs {
    /// `--proxy`, or its default for `--pod-network`.
    fn proxy_mode(&self) -> ProxyMode {
        let kind = self.proxy.unwrap_or(match self.pod_network {
            PodNetworkKind::Bridge => ProxyKind::Userspace,
            PodNetworkKind::Host => ProxyKind::None,
        });
        match kind {
            ProxyKind::Userspace => ProxyMode::Userspace,
            ProxyKind::None => ProxyMode::None,
        }
    }

    /// `--ingress-http-listen` and `--ingress-https-listen`.
    fn ingress(&self) -> IngressListen {
        IngressListen {
            http: self.ingress_http_listen.0,
            https: self.ingress_https_listen.0,
        }
    }

    /// `--dns`, `--cluster-dns` and `--cluster-domain` (`--dns` defaults to node-local
    /// with the node proxy, which holds the address).
    fn cluster_dns(&self) -> ClusterDns {
        let kind = self.dns.unwrap_or(match self.proxy_mode() {
            ProxyMode::Userspace => DnsKind::NodeLocal,
            ProxyMode::None => DnsKind::None,
        });
        ClusterDns {
            mode: match kind {
                DnsKind::NodeLocal => DnsMode::NodeLocal,
                DnsKind::None => DnsMode::None,
            },
            address: self
                .cluster_dns
                .unwrap_or(skiff_api::dns::DEFAULT_CLUSTER_DNS),
            domain: self.cluster_domain.clone(),
        }
    }

    fn mode(self) -> PodNetworkMode {
        match self.pod_network {
            PodNetworkKind::Bridge => PodNetworkMode::Bridge {
                bridge: self.bridge_name,
                cluster_cidr: self.cluster_cidr,
            },
            PodNetworkKind::Host => PodNetworkMode::Host,
        }
    }
}

/// Caps on the node's container logs.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Rotate a container's log when it reaches this size (as the kubelet's flag).
    #[arg(long, default_value = "10Mi", value_parser = parse_size)]
    pub container_log_max_size: u64,
    /// Log files kept per container, the live one counted (as the kubelet's flag).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub container_log_max_files: u32,
    /// Drop container output (after one marker line) while the filesystem of the node's
    /// data dir has less free than this, so logs never fill the store's disk.
    #[arg(long, default_value = "100Mi", value_parser = parse_size)]
    pub container_log_min_free: u64,
}

impl LogArgs {
    fn limits(&self) -> LogLimits {
        LogLimits {
            max_size: self.container_log_max_size,
            max_files: self.container_log_max_files,
            min_free: self.container_log_min_free,
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    skiff_api::quantity::parse_bytes(text).map_err(|e| e.to_string())
}

impl ImageArgs {
    /// The image garbage collection flags, checked against each other.
    fn gc_policy(&self) -> anyhow::Result<ImageGcPolicy> {
        if self.image_gc_low_threshold >= self.image_gc_high_threshold {
            anyhow::bail!(
                "--image-gc-low-threshold ({}) must be below --image-gc-high-threshold ({})",
                self.image_gc_low_threshold,
                self.image_gc_high_threshold
            );
        }
        if self.image_gc_period.is_zero() {
            anyhow::bail!("--image-gc-period must be above zero");
        }
        Ok(ImageGcPolicy {
            high_threshold_percent: self.image_gc_high_threshold,
            low_threshold_percent: self.image_gc_low_threshold,
            minimum_age: self.image_minimum_gc_age,
            period: self.image_gc_period,
        })
    }

    /// Dev mode's default when no directory is given: the working directory, and
    /// `wasm-examples` in it or above it, or above the `skiff` binary (a build in the repo).
    pub fn or_dev_defaults(mut self) -> Self {
        if !self.allow_image_dirs.is_empty() {
            return self;
        }
        let cwd = std::env::current_dir().ok();
        let exe = std::env::current_exe().ok();
        let examples = [cwd.as_deref(), exe.as_deref()]
            .into_iter()
            .flatten()
            .flat_map(Path::ancestors)
            .map(|dir| dir.join("wasm-examples"))
            .find(|dir| dir.is_dir());
        self.allow_image_dirs
            .extend(cwd.into_iter().chain(examples));
        self
    }
}

/// How many connections a daemon's HTTP listener holds, and for how long.
#[derive(Args, Debug)]
pub struct ConnArgs {
    /// Connections the HTTP listener serves at once (default: 4096 for a server, 256 for an
    /// agent), lowered if needed to fit the process's descriptor limit with a reserve kept
    /// for the store. Further connections wait; idle ones are closed to make room for them.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Seconds a connection may sit idle, or take to send a request's headers, before it is
    /// closed; requests in flight (watches, log follows) are never cut.
    #[arg(long, default_value_t = skiff_net::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
}

impl ConnArgs {
    /// The limits for the daemon's listener: `--max-connections` or `default_max`, within
    /// what is left of `budget`.
    pub fn limits(&self, default_max: usize, budget: &mut usize) -> ConnLimits {
        self.limits_of(self.max_connections.unwrap_or(default_max), budget)
    }

    /// The limits for a listener that wants `wanted` connections: at most what is left of
    /// `budget` (descriptors the listeners may still take), which shrinks by it.
    pub fn limits_of(&self, wanted: usize, budget: &mut usize) -> ConnLimits {
        let max_connections = wanted.min(*budget).max(1);
        if max_connections < wanted {
            eprintln!(
                "note: serving at most {max_connections} connections instead of {wanted}: the \
                 descriptor limit (ulimit -n) keeps a reserve for the store"
            );
        }
        *budget = budget.saturating_sub(max_connections);
        ConnLimits {
            max_connections,
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout.max(1)),
        }
    }
}

/// Raises the descriptor limit to its maximum and returns how many descriptors the
/// listeners may hold together, a reserve left for the store and files.
pub fn descriptor_budget() -> usize {
    match skiff_net::descriptors::raise_limit() {
        Ok(limit) => skiff_net::descriptors::connection_budget(limit),
        Err(err) => {
            eprintln!("warning: cannot read or raise the descriptor limit: {err}");
            skiff_net::descriptors::connection_budget(1024)
        }
    }
}

/// A node agent with the runtimes of `--runtimes` (the Wasm runtime by default), its data
/// under `data_dir`, to be built.
pub fn wasm_agent(
    servers: Vec<String>,
    token: Option<&str>,
    labels: BTreeMap<String, String>,
    node: String,
    data_dir: PathBuf,
    listen: Option<SocketAddr>,
    NodeArgs {
        network,
        images,
        logs,
        resources,
        runtimes,
        heartbeat,
        events,
    }: NodeArgs,
) -> anyhow::Result<AgentBuilder> {
    if images.allow_image_dirs.is_empty() {
        eprintln!("warning: no --allow-image-dir given: this node refuses every file: image");
    }
    let image_gc = images.gc_policy()?;
    crate::private_files::private_dir(&data_dir)?;
    let builder = images.allow_image_dirs.into_iter().fold(
        runtimes.apply(
            events.apply(heartbeat.apply(resources.apply(Agent::builder(), runtimes.wasm_only()))),
            &data_dir,
            logs.limits(),
        )?,
        |builder, dir| builder.allow_image_dir(dir),
    );
    let builder = images
        .insecure_registries
        .into_iter()
        .fold(builder, |builder, registry| {
            builder.insecure_registry(registry)
        });
    let builder = match listen {
        Some(addr) => builder.listen(addr),
        None => builder.without_listener(),
    };
    let builder = match token {
        Some(token) => builder.token(token),
        None => builder,
    };
    Ok(builder
        .image_gc(image_gc)
        .max_image_size(images.max_image_size)
        .servers(servers)
        .labels(labels)
        .node_name(node)
        .data_dir(data_dir)
        .proxy(network.proxy_mode())
        .ingress(network.ingress())
        .cluster_dns(network.cluster_dns())
        .pod_network(network.mode()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_listeners_take_an_address_or_none() {
        assert_eq!(parse_listen_or_none("none"), Ok(ListenOrNone(None)));
        assert_eq!(
            parse_listen_or_none("127.0.0.1:8080"),
            Ok(ListenOrNone(Some("127.0.0.1:8080".parse().unwrap())))
        );
        assert!(parse_listen_or_none("80").is_err());
    }

    #[test]
    fn bridge_names_are_interface_names() {
        assert_eq!(parse_interface_name("skiff0"), Ok("skiff0".into()));
        for bad in ["", "waytoolongbridgename0", "a/b", "a b"] {
            assert!(parse_interface_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_are_dns_names() {
        assert_eq!(parse_domain("Cluster.Local."), Ok("cluster.local".into()));
        for bad in ["", ".", "a..b", "-a.b", "a_b.c", "a b"] {
            assert!(parse_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listeners_share_the_descriptor_budget() {
        let args = ConnArgs {
            max_connections: None,
            idle_timeout: 7,
        };
        let mut budget = 300;
        let first = args.limits(256, &mut budget);
        assert_eq!((first.max_connections, budget), (256, 44));
        let second = args.limits(256, &mut budget);
        assert_eq!((second.max_connections, budget), (44, 0));
        assert_eq!(second.idle_timeout, std::time::Duration::from_secs(7));
        let given = ConnArgs {
            max_connections: Some(10),
            idle_timeout: 7,
        };
        let mut budget = 300;
        assert_eq!(given.limits(256, &mut budget).max_connections, 10);
        assert_eq!(budget, 290);
    }
}
