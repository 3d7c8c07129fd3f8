//! `skiff server`: a control-plane member (with `--dev`: plus a Wasm node agent).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use skiff_control_plane::{
    stored_cluster, Cidr, Cluster, PortRange, Server, ServerConfig, ServiceRanges, Timing,
};

use super::daemon::{
    descriptor_budget, host_name, parse_listen_or_none, terminated, wasm_agent, ConnArgs, DnsKind,
    ListenOrNone, NodeArgs, PodNetworkArgs,
};
use super::server_limits::ServerLimitArgs;
use super::server_tls::{admin_credentials, server_tls, write_admin_kubeconfig, TlsArgs};
use crate::private_files;
use skiff_client::Client;
use skiff_control_plane::pki::{CertRequest, RenewingCert, ServerTls, Usage};
use skiff_net::reloading_ca::ReloadingCa;
use skiff_net::reloading_cert::ReloadingCert;
use skiff_node_runtime::agent::credentials::{node_client, Bootstrap};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// One process: API server, single-voter store, controllers, scheduler and a Wasm node agent.
    #[arg(long)]
    pub dev: bool,
    /// Where the store (and, in dev mode, the agent) keep their data.
    #[arg(long, default_value = "./skiff-data")]
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// This member's name.
    #[arg(long, default_value = "skiff-server")]
    pub name: String,
    /// Every control-plane member as `NAME=HOST:PEERPORT,...` (etcd-style), this one included;
    /// without it the server is a cluster of one.
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Join a running cluster through these API URLs (after `skiff cluster add NAME`), instead
    /// of `--initial-cluster`; ignored once the data dir holds a store.
    #[arg(long)]
    pub join: Option<String>,
    /// Where this member accepts Raft traffic from the others (default: its entry in
    /// `--initial-cluster`, or the address given to `skiff cluster add`).
    #[arg(long)]
    pub peer_listen: Option<SocketAddr>,
    /// This member's certificate (PEM) for mutual TLS with the other members, as etcd's
    /// flag: it must name the member (a SAN with its `--name` or its peer host) and be good
    /// for server and client auth. Give all three `--peer-*` files or none (a
    /// peer certificate issued from the cluster CA). Read again when it or the key changes.
    #[arg(long, requires_all = ["peer_key_file", "peer_trusted_ca_file"])]
    pub peer_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `--peer-cert-file`.
    #[arg(long, requires_all = ["peer_cert_file", "peer_trusted_ca_file"])]
    pub peer_key_file: Option<PathBuf>,
    /// The CA (PEM) the other members' certificates must be signed by, or several (while
    /// rotating it). Read again when it changes.
    #[arg(long, requires_all = ["peer_cert_file", "peer_key_file"])]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Raft peers on plain TCP, without TLS (to measure what TLS costs): anyone who reaches the
    /// peer port and knows the cluster id can then forge Raft messages.
    #[arg(long, conflicts_with = "peer_cert_file")]
    pub insecure_peers: bool,
    /// Raft heartbeat interval in milliseconds (etcd's default).
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Raft election timeout in milliseconds (etcd's default); a multiple of the heartbeat.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
    /// Raft log entries kept behind the applied index; a member further behind catches up
    /// from a snapshot.
    #[arg(long, default_value_t = skiff_control_plane::DEFAULT_LOG_RETAIN)]
    pub log_retain: u64,
    /// Seconds a node may go without a heartbeat before it is marked NotReady and its pods
    /// are replaced elsewhere (Kubernetes' node-monitor grace period: 40 s, the agents'
    /// default Lease duration).
    #[arg(long, default_value_t = 40)]
    pub node_grace_seconds: u64,
    /// The IP this member publishes in its lease in `kube-system`, and so in the `kubernetes`
    /// Service's endpoints that agents find the servers by (default: the `--listen` host; for
    /// a wildcard, the address of the interface the default route leaves by).
    #[arg(long)]
    pub advertise_address: Option<std::net::IpAddr>,
    /// How long this member's lease lasts without renewal (renewed a third of that apart): a
    /// stopped member leaves the `kubernetes` endpoints that long after its last renewal.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub apiserver_lease_seconds: u64,
    /// How long a certificate the CSR signer issues is valid at most, e.g. `8760h` or `10m`
    /// (Kubernetes' `--cluster-signing-duration`; a request's `expirationSeconds` may ask for
    /// less). Nodes renew theirs at 70–90% of it.
    #[arg(long, value_name = "DURATION", default_value = "8760h", value_parser = crate::duration::parse)]
    pub cluster_signing_duration: Duration,
    /// The IPv4 range Services get their ClusterIPs from (k3s's default).
    #[arg(long, default_value = skiff_control_plane::DEFAULT_SERVICE_CIDR)]
    pub service_cluster_ip_range: Cidr,
    /// The ports NodePort Services get their node ports from.
    #[arg(long, default_value = skiff_control_plane::DEFAULT_NODE_PORT_RANGE)]
    pub service_node_port_range: PortRange,
    /// The pod network: each node gets a block of it as its pod CIDR (k3s' default).
    #[arg(long, default_value = skiff_api::pod_cidr::DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: String,
    /// The prefix length of each node's block of `--cluster-cidr`.
    #[arg(long, default_value_t = skiff_api::pod_cidr::DEFAULT_NODE_CIDR_MASK_SIZE)]
    pub node_cidr_mask_size: u8,
    /// Dev mode: the node's name (default: this host's name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Dev mode: the agent's kubelet endpoint (logs, exec, images), or `none`: the server
    /// reaches its node through the tunnel the node opens either way.
    #[arg(long, default_value = "127.0.0.1:0", value_parser = parse_listen_or_none)]
    pub kubelet_listen: ListenOrNone,
    /// Kubernetes' EncryptionConfiguration (apiserver.config.k8s.io/v1: `aesgcm` and
    /// `identity` providers) naming the resources encrypted at rest; give every member the
    /// same file. Without it: DATA_DIR/encryption-config.yaml, which a server started alone
    /// makes on its first start (Secrets encrypted with a new key); members of a larger
    /// cluster share one config kept in the store, sealed with a key derived from the
    /// cluster CA's.
    #[arg(long)]
    pub encryption_provider_config: Option<PathBuf>,
    /// Static bearer tokens, as Kubernetes' `--token-auth-file`: CSV lines
    /// `token,user,uid[,"group1,group2"]` (`#` comments), read at start.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub connections: ConnArgs,
    #[command(flatten)]
    pub limits: ServerLimitArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The in-process node joins like any other, with a token that never expires, made on the
/// first start and kept in the data dir.
async fn dev_token(client: &Client, data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("dev-join-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        private_files::tighten_secret(&path)?;
        return Ok(token.trim().to_string());
    }
    let token = super::token::create_token(client, Default::default(), "dev node").await?;
    private_files::write_secret(&path, &token.to_string())?;
    Ok(token.to_string())
}

/// `--cluster-dns`, or the tenth address of `--service-cluster-ip-range`; refused outside
/// the range (it is a Service's ClusterIP). A range too small for the default gets no
/// cluster DNS.
fn cluster_dns(args: &ServerArgs) -> anyhow::Result<Option<Ipv4Addr>> {
    let range = args.service_cluster_ip_range;
    let Some(address) = args.node.network.cluster_dns else {
        let default = skiff_api::dns::default_address(range.net());
        if !range.contains(default) {
            eprintln!(
                "note: --service-cluster-ip-range {range} has no tenth address: no cluster DNS \
                 (give --cluster-dns)"
            );
            return Ok(None);
        }
        return Ok(Some(default));
    };
    if !range.contains(address) {
        anyhow::bail!(
            "--cluster-dns {address} is not a usable address of --service-cluster-ip-range {range}"
        );
    }
    Ok(Some(address))
}

/// The member's configuration from its flags; a bad peer list or timing is refused here,
/// before anything is opened. With `--join`, the membership comes from the running cluster
/// (first start) or from the data dir (restarts).
async fn server_config(args: &ServerArgs, tls: &ServerTls) -> anyhow::Result<ServerConfig> {
    if args.election_timeout <= args.heartbeat_interval || args.heartbeat_interval == 0 {
        anyhow::bail!(
            "--election-timeout ({} ms) must be longer than --heartbeat-interval ({} ms), \
             which must be positive; etcd's defaults are 1000 and 100",
            args.election_timeout,
            args.heartbeat_interval
        );
    }
    let mut config = ServerConfig::new(args.name.clone(), args.data_dir.clone(), args.listen);
    config.node_grace = Duration::from_secs(args.node_grace_seconds);
    config.advertise_address = args.advertise_address;
    config.apiserver_lease_duration = Duration::from_secs(args.apiserver_lease_seconds);
    config.cluster_signing_duration = args.cluster_signing_duration.max(Duration::from_secs(1));
    config.pod_cidrs =
        skiff_control_plane::PodCidrRange::new(&args.cluster_cidr, args.node_cidr_mask_size)
            .context("--cluster-cidr and --node-cidr-mask-size")?;
    config.log_retain = args.log_retain.max(1);
    config.encryption_provider_config = args.encryption_provider_config.clone();
    config.inflight = args.limits.inflight();
    config.audit_log = args.limits.audit_log_path.clone();
    config.service_ranges = ServiceRanges {
        cluster_ips: args.service_cluster_ip_range,
        node_ports: args.service_node_port_range,
        cluster_dns: cluster_dns(args)?,
    };
    if skiff_api::pod_cidr::overlaps(
        config.pod_cidrs.cluster(),
        args.service_cluster_ip_range.net(),
    ) {
        anyhow::bail!(
            "--service-cluster-ip-range {} overlaps --cluster-cidr {}: pods and Services need \
             ranges of their own",
            args.service_cluster_ip_range,
            config.pod_cidrs.cluster()
        );
    }
    config.timing = Timing {
        tick: Duration::from_millis(args.heartbeat_interval),
        heartbeat_ticks: 1,
        election_ticks: (args.election_timeout / args.heartbeat_interval) as usize,
    };
    config.peer_tls = match args.insecure_peers {
        true => None,
        false => Some(peer_tls(args, tls)?),
    };
    if let Some(urls) = &args.join {
        if args.dev || args.initial_cluster.is_some() {
            anyhow::bail!(
                "--join starts a new member of a running cluster: drop --dev and --initial-cluster"
            );
        }
        let store = args.data_dir.join(skiff_control_plane::STORE_DIR);
        config.cluster = match stored_cluster(&store)? {
            Some(cluster) => cluster,
            None => {
                let (cluster, conf) =
                    super::cluster::join_info(urls, &args.name, &admin_credentials(tls)).await?;
                config.join = Some(conf);
                cluster
            }
        };
        let own = config
            .cluster
            .member(config.cluster.local)
            .map(|m| m.peer_addr.clone())
            .unwrap_or_default();
        config.peer_listen = Some(match args.peer_listen {
            Some(addr) => addr,
            None => own.parse().with_context(|| {
                format!(
                    "the cluster gives {:?} the peer address {own:?}; pass --peer-listen",
                    args.name
                )
            })?,
        });
    } else if let Some(initial) = &args.initial_cluster {
        if args.dev {
            anyhow::bail!("--dev runs a cluster of one; it cannot take --initial-cluster");
        }
        config.cluster = Cluster::parse(&args.name, initial)?;
        let own = config
            .cluster
            .member(config.cluster.local)
            .map(|m| m.peer_addr.clone())
            .unwrap_or_default();
        config.peer_listen = match args.peer_listen {
            Some(addr) => Some(addr),
            None => Some(own.parse().with_context(|| {
                format!(
                    "--initial-cluster gives {:?} the peer address {own:?}, which is not \
                     IP:PORT; pass --peer-listen",
                    args.name
                )
            })?),
        };
    } else if args.peer_listen.is_some() {
        anyhow::bail!("--peer-listen needs --initial-cluster (the other members)");
    }
    Ok(config)
}

/// How long the peer certificate a member issues itself is valid.
const PEER_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The peers' mutual TLS: from the `--peer-*` files when given (clap makes it all three or
/// none), else a certificate this member issues itself from the cluster CA on each start and
/// renews while it runs, naming the member (the name its peers check) and its peer address.
fn peer_tls(args: &ServerArgs, tls: &ServerTls) -> anyhow::Result<skiff_control_plane::PeerTls> {
    let files = (
        &args.peer_cert_file,
        &args.peer_key_file,
        &args.peer_trusted_ca_file,
    );
    let (Some(cert), Some(key), Some(ca)) = files else {
        let mut sans = vec![args.name.clone()];
        sans.extend(args.peer_listen.map(|addr| addr.ip().to_string()));
        let request = CertRequest {
            common_name: args.name.clone(),
            organizations: Vec::new(),
            sans,
            usage: Usage::ServerAndClient,
            validity: PEER_CERT_VALIDITY,
        };
        let identity = RenewingCert::new(tls.shared_ca(), request, None)
            .context("issuing this member's peer certificate from the cluster CA")?;
        return skiff_control_plane::PeerTls::with_identity(
            tls.ca_pem().as_bytes(),
            Arc::new(identity),
        )
        .context("the peer certificate issued from the cluster CA");
    };
    // Each read again when it changes, as the API's `--tls-cert-file`.
    let ca = ReloadingCa::new(ca).context("--peer-trusted-ca-file")?;
    let identity = ReloadingCert::new(cert, key).context("--peer-cert-file and --peer-key-file")?;
    skiff_control_plane::PeerTls::with_trusted_ca_file(Arc::new(ca), Arc::new(identity))
        .context("--peer-cert-file, --peer-key-file and --peer-trusted-ca-file")
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    private_files::private_dir(&args.data_dir)?;
    if let Some(initial) = &args.initial_cluster {
        // A bad member list is named before the certificates are looked at.
        Cluster::parse(&args.name, initial)?;
    }
    let tls = Arc::new(server_tls(&args)?);
    let mut config = server_config(&args, &tls).await?;
    config.tls = Some(tls.clone());
    config.insecure_http = args.tls.insecure_http;
    config.token_auth_file = args.token_auth_file.clone();
    // The listeners share the descriptor budget: the peer listener and (dev mode) the
    // agent's log server take a small share first, the API server the rest.
    let mut budget = descriptor_budget();
    if config.peer_listen.is_some() {
        budget = budget.saturating_sub(skiff_control_plane::MAX_PEER_CONNECTIONS);
    }
    let agent_limits = args.dev.then(|| {
        let wanted = skiff_node_runtime::agent::DEFAULT_MAX_CONNECTIONS.min(budget / 4);
        args.connections.limits_of(wanted, &mut budget)
    });
    config.connections = args
        .connections
        .limits(skiff_net::DEFAULT_MAX_CONNECTIONS, &mut budget);
    let cluster_cidr = config.pod_cidrs.cluster();
    let cluster_dns = config.service_ranges.cluster_dns;
    let handle = Server::start(config).await?;
    let url = handle.url();
    // The address clients reach: a wildcard listen address is reached on loopback.
    let mut reach = handle.local_addr;
    if reach.ip().is_unspecified() {
        reach.set_ip(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let kubeconfig = write_admin_kubeconfig(&args, &tls, &format!("https://{reach}"))?;
    // Written before the address is announced: whoever reads the announcement finds it.
    println!(
        "skiff API listening on {url} (data in {})",
        args.data_dir.display()
    );
    println!("admin credentials in {}", kubeconfig.display());
    if let Some(insecure) = handle.insecure_addr {
        println!("plain HTTP (as admin) on http://{insecure}");
    }
    let agent = if args.dev {
        let node = args.node_name.clone().unwrap_or_else(host_name);
        let admin = Client::with_credentials(std::slice::from_ref(&url), &admin_credentials(&tls))?;
        let token = dev_token(&admin, &args.data_dir).await?;
        let agent_dir = args.data_dir.join("agent");
        let agent_client = node_client(&Bootstrap {
            servers: std::slice::from_ref(&url),
            ca_pem: tls.ca_pem().as_bytes(),
            token: &token,
            data_dir: &agent_dir,
            node: &node,
        })
        .await?;
        let agent = wasm_agent(
            vec![url.clone()],
            None,
            Default::default(),
            node.clone(),
            agent_dir,
            args.kubelet_listen.0,
            NodeArgs {
                network: PodNetworkArgs {
                    cluster_cidr: Some(cluster_cidr),
                    cluster_dns,
                    // No kube-dns Service (a range without a tenth address): nothing to serve.
                    dns: if cluster_dns.is_none() {
                        Some(DnsKind::None)
                    } else {
                        args.node.network.dns
                    },
                    ..args.node.network
                },
                images: args.node.images.or_dev_defaults(),
                logs: args.node.logs,
                resources: args.node.resources,
                runtimes: args.node.runtimes,
                heartbeat: args.node.heartbeat,
                events: args.node.events,
            },
        )?
        .connections(agent_limits.unwrap_or_default())
        .client(agent_client)
        .cluster_ca(tls.ca_pem().as_bytes().to_vec())
        .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let ran = agent
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
            // Said at once: the server goes on serving without its node.
            if let Err(err) = &ran {
                eprintln!("agent: {err}");
            }
            ran
        });
        println!("dev node {node:?} runs Wasm pods; try:");
        println!("  export KUBECONFIG={}", kubeconfig.display());
        println!("  skiff apply -f wasm-examples/ticker/deploy.yaml && skiff get pods");
        Some((stop, task))
    } else {
        None
    };
    tokio::select! {
        _ = terminated() => {}
        _ = handle.removed() => println!("this server was removed from the cluster"),
    }
    println!("shutting down");
    if let Some((stop, task)) = agent {
        let _ = stop.send(());
        if let Err(err) = task.await {
            eprintln!("agent task: {err}");
        }
    }
    handle.shutdown().await;
    Ok(())
}
