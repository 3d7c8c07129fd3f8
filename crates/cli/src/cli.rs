//! Command-line interface definitions (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Skiff: a WebAssembly-first workload orchestrator with Kubernetes-shaped APIs.
#[derive(Parser, Debug)]
#[command(name = "skiff", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// API server URL(s), comma-separated; requests fail over between them.
    #[arg(
        long,
        env = "SKIFF_SERVER",
        default_value = "http://127.0.0.1:6443",
        global = true
    )]
    pub server: String,
    /// Namespace.
    #[arg(short = 'n', long, default_value = "default", global = true)]
    pub namespace: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a control-plane server (with `--dev`: also a node agent, in one process).
    Server(ServerArgs),
    /// Run a node agent that joins a cluster.
    Agent(AgentArgs),
    /// Create or update objects from manifest files.
    Apply(ApplyArgs),
    /// List or show objects.
    Get(GetArgs),
    /// Show details of an object and its events.
    Describe(DescribeArgs),
    /// Delete objects by name or by manifest.
    Delete(DeleteArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Set the replicas of a Deployment or ReplicaSet.
    Scale(ScaleArgs),
    /// Mark a node unschedulable: new pods are not placed on it (running ones stay).
    Cordon(NodeArgs),
    /// Mark a node schedulable again.
    Uncordon(NodeArgs),
    /// Cordon a node and delete its pods gracefully, waiting until they are gone.
    Drain(DrainArgs),
    /// The control plane's Raft group: `skiff cluster status`.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Back up a running cluster's store, or seed a new cluster from a backup.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Join tokens for agents: `skiff token create`, `skiff token list`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Measure the cluster: see `skiff bench deploy --help`.
    #[command(subcommand)]
    Bench(BenchCommand),
}

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
    /// are replaced elsewhere.
    #[arg(long, default_value_t = 6)]
    pub node_grace_seconds: u64,
    /// Dev mode: the node's name (default: this host's name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Dev mode: the agent's kubelet (logs) endpoint.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub kubelet_listen: SocketAddr,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Members, leader, term, commit and applied index, and each member's lag, asked of every
    /// server in `--server`.
    Status(ClusterStatusArgs),
    /// Add a member (a learner until it has caught up, then a voter); then start it with
    /// `skiff server --name NAME --join URL...`.
    Add(ClusterAddArgs),
    /// Remove a member; it stops serving.
    Remove(ClusterRemoveArgs),
}

#[derive(Args, Debug)]
pub struct ClusterAddArgs {
    /// The new member's `--name`.
    pub name: String,
    /// Where the new member will accept Raft traffic (its `--peer-listen`), IP:PORT.
    #[arg(long)]
    pub peer_address: String,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Args, Debug)]
pub struct ClusterRemoveArgs {
    /// The member's name.
    pub name: String,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Save every object of a running cluster, at one consistent point, to FILE.
    Save(BackupSaveArgs),
    /// Seed a new server's data dir from a backup (the server is not running); give every
    /// member of a new multi-master cluster the same file.
    Restore(BackupRestoreArgs),
}

#[derive(Args, Debug)]
pub struct BackupSaveArgs {
    /// Where to write the backup.
    pub file: PathBuf,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Args, Debug)]
pub struct BackupRestoreArgs {
    /// A file from `skiff backup save`.
    pub file: PathBuf,
    /// The new server's data dir (must not hold a store yet).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The new server's `--name`.
    #[arg(long, default_value = "skiff-server")]
    pub name: String,
    /// The new cluster's `--initial-cluster` (omit for a cluster of one).
    #[arg(long)]
    pub initial_cluster: Option<String>,
}

#[derive(Args, Debug)]
pub struct ClusterStatusArgs {
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// The join token from `skiff token create`.
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The node's name (default: this host's name).
    #[arg(long, alias = "name")]
    pub node_name: Option<String>,
    /// A node label `key=value` (repeatable), for nodeSelector and affinity.
    #[arg(long = "node-label", value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,
    /// Where the agent keeps images, compiled guests and logs.
    #[arg(long, default_value = "./skiff-agent")]
    pub data_dir: PathBuf,
    /// The kubelet (logs) endpoint; the API server must reach it.
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub listen: SocketAddr,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?}: expected key=value"))
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Manifest file, directory, or `-` for standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Resource type(s), comma-separated (pods, deploy, rs, nodes, ns, cm, secrets, svc, events).
    pub kind: String,
    /// Names (all objects when none).
    pub names: Vec<String>,
    /// Label selector, e.g. `app=web,tier in (a,b)`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=node-1`.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    /// After listing, print changes as they happen.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    pub kind: String,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Resource type, then names (or use -f).
    pub args: Vec<String>,
    /// Delete the objects of these manifests.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Seconds pods get to stop (0: at once).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    pub pod: String,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// The previous (restarted) container's log.
    #[arg(short = 'p', long)]
    pub previous: bool,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// `deployment` or `replicaset` (short names work), then the name; or `deployment/NAME`.
    pub target: Vec<String>,
    #[arg(long)]
    pub replicas: i32,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// The node's name.
    pub node: String,
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Seconds each pod gets to stop (default: the pod's own grace period).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a join token and print it.
    Create(TokenCreateArgs),
    /// List join tokens (their ids, never their secrets).
    List(TokenListArgs),
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// How long the token is valid (e.g. 24h, 90m); 0 for ever.
    #[arg(long, default_value = "24h")]
    pub ttl: String,
    /// A note stored with the token.
    #[arg(long, default_value = "")]
    pub description: String,
}

#[derive(Args, Debug)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Deploy N Wasm replicas on an in-process dev cluster and report start-up figures.
    Deploy(BenchDeployArgs),
    /// Run N hollow (simulated) nodes against a real server and report scheduling throughput,
    /// API latency and control-plane memory.
    Nodes(BenchNodesArgs),
    /// kill -9 a real agent and time until its pods run elsewhere.
    NodeLoss(BenchNodeLossArgs),
    /// Control-plane write throughput and latency (1 and 3 servers), leader failover, and a
    /// follower's catch-up, with `skiff server` child processes.
    Store(BenchStoreArgs),
}

#[derive(Args, Debug)]
pub struct BenchNodeLossArgs {
    /// Agent processes to start (real Wasm runtime).
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// Replicas of the ticker Deployment.
    #[arg(long, default_value_t = 30)]
    pub replicas: usize,
    /// The started server's `--node-grace-seconds`.
    #[arg(long, default_value_t = 6)]
    pub node_grace_seconds: u64,
    #[command(flatten)]
    pub run: BenchRunOpts,
}

#[derive(Args, Debug)]
pub struct BenchStoreArgs {
    /// Control-plane sizes to measure (1: a cluster of one; 3 or 5: a Raft group).
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub servers: Vec<usize>,
    /// Concurrent clients to measure each size with.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub clients: Vec<usize>,
    /// Writes per run.
    #[arg(long, default_value_t = 2000)]
    pub writes: usize,
    /// Leader kills to time on a 3-server control plane (0: skip).
    #[arg(long, default_value_t = 3)]
    pub failovers: usize,
    /// Entries a stopped follower falls behind before it is restarted (0: skip).
    #[arg(long, default_value_t = 100_000)]
    pub catch_up_entries: usize,
    /// Where the servers keep their data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchNodesArgs {
    /// Hollow nodes to run in this process (real agent loops on a simulated runtime).
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Pods to create.
    #[arg(long, default_value_t = 30_000)]
    pub pods: usize,
    /// Replicas per Deployment.
    #[arg(long, default_value_t = 1000)]
    pub per_deployment: usize,
    /// Measure this server instead of starting `skiff server` as a child process.
    #[arg(long)]
    pub server: Option<String>,
    /// The started server's `--node-grace-seconds`.
    #[arg(long, default_value_t = 6)]
    pub node_grace_seconds: u64,
    /// Where the started server and the nodes keep their data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchDeployArgs {
    /// Replicas of the benchmark Deployment.
    #[arg(long, default_value_t = 100)]
    pub replicas: usize,
    #[command(flatten)]
    pub run: BenchRunOpts,
}

/// The guest a Wasm benchmark runs, and where its cluster keeps data.
#[derive(Args, Debug)]
pub struct BenchRunOpts {
    /// The guest to run (a long-running one).
    #[arg(
        long,
        default_value = "wasm-examples/target/wasm32-wasip1/release/ticker.wasm"
    )]
    pub guest: PathBuf,
    /// Where the throwaway cluster keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}
