//! `skiff bench ...`: figures from real clusters, printed (never asserted in tests). The
//! `skiff` binary parses these commands and runs them here; benchmarks that need servers or
//! agents as separate processes start the running executable (`skiff`) again.

mod api;
mod cluster;
mod connections;
mod container;
mod dashboard;
mod density;
mod deploy;
mod dev_cluster;
mod etcd;
mod figures;
mod http;
mod job;
mod list;
mod local_registry;
mod logs;
mod memory;
mod netns;
mod node_loss;
mod nodes;
mod peer_certs;
mod pending_pods;
mod probe;
mod pull;
mod registry;
mod rollout;
mod secrets;
mod server;
mod store;
mod wasmtime_cli;
mod write;
mod wrk;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

pub use api::BenchApiArgs;
pub use connections::BenchConnectionsArgs;
pub use container::BenchContainerArgs;
pub use dashboard::BenchDashboardArgs;
pub use density::BenchDensityArgs;
pub use deploy::BenchDeployArgs;
pub use http::BenchHttpArgs;
pub use job::BenchJobArgs;
pub use list::BenchListArgs;
pub use logs::BenchLogsArgs;
pub use node_loss::BenchNodeLossArgs;
pub use nodes::BenchNodesArgs;
pub use pull::BenchPullArgs;
pub use registry::BenchRegistryArgs;
pub use rollout::BenchRolloutArgs;
pub use secrets::BenchSecretsArgs;
pub use store::BenchStoreArgs;
pub use write::BenchWriteArgs;

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Deploy N Wasm replicas on an in-process dev cluster and report start-up figures.
    Deploy(BenchDeployArgs),
    /// Many idle Wasm pods on one real agent (a `skiff server` child process beside it): time
    /// to all Running, and the agent's RSS, mappings, descriptors and idle CPU per pod.
    Density(BenchDensityArgs),
    /// A Job of many short Wasm pods on an in-process dev cluster: time to complete, pods/s.
    Job(BenchJobArgs),
    /// Run N hollow (simulated) nodes against a real server (a `skiff server` child process,
    /// or the one named with `--server`) and report scheduling throughput, API latency and
    /// control-plane memory.
    Nodes(BenchNodesArgs),
    /// kill -9 a real agent and time until its pods run elsewhere.
    NodeLoss(BenchNodeLossArgs),
    /// Control-plane write throughput and latency (1 and 3 servers), leader failover, and a
    /// follower's catch-up, with `skiff server` child processes.
    Store(BenchStoreArgs),
    /// Writes of a three-member control plane through its HTTPS API beside a three-member
    /// etcd's `/v3/kv/put`, both on loopback under the same `wrk` load, at several
    /// concurrencies: req/s, p50, p99, failed answers and the ratio.
    Write(BenchWriteArgs),
    /// The secure path's cost: ConfigMap create/get throughput and p50/p99 over
    /// `--insecure-http`, HTTPS as the admin, and HTTPS as a static-token user that RBAC
    /// authorizes, against one `skiff server` child process.
    Api(BenchApiArgs),
    /// Secret create/get throughput and latency with `identity` and with `aesgcm` encryption
    /// at rest, on `skiff server` child processes.
    Secrets(BenchSecretsArgs),
    /// A guest floods its log on a `skiff server --dev` child process: the node's memory and
    /// log disk use before, during and after, and API and `logs --tail 1` latencies.
    Logs(BenchLogsArgs),
    /// A flood of idle connections against a `skiff server` child process: its memory and
    /// descriptors before, during and after, and write latency during the flood.
    Connections(BenchConnectionsArgs),
    /// Roll an N-replica Deployment to a new version on an in-process dev cluster: time to
    /// complete, and the fewest available / most pods on the way.
    Rollout(BenchRolloutArgs),
    /// A Wasm pod's start from a registry artifact with a cold and a warm cache (pushes the
    /// guest to a local `docker-registry`, or to `--registry`).
    Registry(BenchRegistryArgs),
    /// Linux image pull throughput from a local `docker-registry`: the node's image service
    /// beside `skopeo copy` of the same image, in MB/s.
    Pull(BenchPullArgs),
    /// Requests per second and p50/p99 of a wasi:http Wasm pod under `wrk`: direct, through
    /// its ClusterIP and through the Ingress, and `wasmtime serve` on the same component.
    Http(BenchHttpArgs),
    /// Create -> running and start -> exit of a `true` busybox container on the Linux
    /// runtime, beside crun and runc on the same root filesystem (needs root).
    Container(BenchContainerArgs),
    /// The web dashboard's pods page with many pods on a `skiff server` child process: its
    /// server-side rendering time and bytes beside the API's JSON list, and headless
    /// Chromium's load of it.
    Dashboard(BenchDashboardArgs),
    /// Listing many pods with stock `kubectl get pods` and with `skiff get pods` on a `skiff
    /// server` child process: wall-clock time and bytes of each.
    List(BenchListArgs),
}

/// Runs one benchmark, printing its figures.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Deploy(args) => deploy::deploy(args).await,
        BenchCommand::Density(args) => density::density(args).await,
        BenchCommand::Job(args) => job::job(args).await,
        BenchCommand::Nodes(args) => nodes::nodes(args).await,
        BenchCommand::NodeLoss(args) => node_loss::node_loss(args).await,
        BenchCommand::Store(args) => store::store(args).await,
        BenchCommand::Write(args) => write::write(args).await,
        BenchCommand::Api(args) => api::api(args).await,
        BenchCommand::Secrets(args) => secrets::secrets(args).await,
        BenchCommand::Logs(args) => logs::logs(args).await,
        BenchCommand::Connections(args) => connections::connections(args).await,
        BenchCommand::Rollout(args) => rollout::rollout(args).await,
        BenchCommand::Registry(args) => registry::registry(args).await,
        BenchCommand::Pull(args) => pull::pull(args).await,
        BenchCommand::Http(args) => http::http(args).await,
        BenchCommand::Container(args) => container::container(args).await,
        BenchCommand::Dashboard(args) => dashboard::dashboard(args).await,
        BenchCommand::List(args) => list::list(args).await,
    }
}

/// The guest a Wasm benchmark runs, and where its cluster keeps data.
#[derive(Args, Debug)]
pub struct RunOpts {
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

/// The benchmark guest as an absolute path, with a hint when it was not built.
fn guest_path(guest: &Path) -> anyhow::Result<PathBuf> {
    guest.canonicalize().with_context(|| {
        format!(
            "{}: guest not found (build it with scripts/build-guests.sh)",
            guest.display()
        )
    })
}

/// The path of executable `name` on PATH.
fn which(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("no {name} on PATH"))
}

/// The path of executable `name`, installed from Debian's `package` with apt-get when it is
/// not on PATH.
fn installed(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    if let Ok(path) = which(name) {
        return Ok(path);
    }
    println!("{name} is missing: apt-get install -y {package}");
    let status = std::process::Command::new("apt-get")
        .args(["install", "-y", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("running apt-get install {package}"))?;
    if !status.success() {
        anyhow::bail!("apt-get install -y {package} failed with {status}");
    }
    which(name)
}

/// A fresh directory under `given` (or the system's temporary directory), removed when dropped.
fn tempfile_dir(given: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    match given {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Ok(tempfile::tempdir_in(dir)?)
        }
        None => Ok(tempfile::tempdir()?),
    }
}
