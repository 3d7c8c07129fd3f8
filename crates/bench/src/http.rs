//! `skiff bench http`: requests per second and p50/p99 latency of a wasi:http component (the
//! `http-echo` example by default) served by a Wasm pod on an in-process dev cluster, measured
//! with Debian's `wrk` in one run: straight at the pod, through its Service's ClusterIP (the
//! agent's userspace node proxy), through the agent's Ingress listener, and `wasmtime serve`
//! on the same component; then the ratios the goals name.
//!
//! As root (as CI runs) the cluster lives in a network namespace of its own, its pod on a
//! bridge with an address of the node's pod CIDR, as `skiff server --dev` runs pods. Without
//! root the pod shares the network and there is no ClusterIP line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use skiff_client::Client;
use skiff_node_runtime::agent::IngressListen;

use crate::cluster::kind;
use crate::dev_cluster::{DevCluster, NodeNetwork};
use crate::wrk::{self, Load, Settings};
use crate::{guest_path, netns, tempfile_dir, wasmtime_cli};

/// The pod's port when it has an address of its own.
const POD_PORT: u16 = 8080;
/// Longest wait for the pod's address.
const POD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
pub struct BenchHttpArgs {
    /// The wasi:http component to serve.
    #[arg(
        long,
        default_value = "wasm-examples/target/wasm32-wasip2/release/http_echo.wasm"
    )]
    pub guest: PathBuf,
    /// wrk's open connections.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Length of each load run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// The `wasmtime` executable to compare with (default: wasmtime-cli of the workspace's
    /// wasmtime version in target/bench-tools, installed with cargo the first time).
    #[arg(long, value_name = "PATH")]
    pub wasmtime: Option<PathBuf>,
    /// Where the throwaway cluster keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Each path's figures.
#[derive(Default)]
struct Figures {
    direct: Option<Load>,
    cluster_ip: Option<Load>,
    ingress: Option<Load>,
    wasmtime: Option<Load>,
}

pub async fn http(args: BenchHttpArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.guest)?;
    wrk::executable()?;
    // Before entering the namespace: installing needs the network.
    let wasmtime = match wasmtime_cli::find_or_install(args.wasmtime.as_deref()).await {
        Ok(path) => Some(path),
        Err(err) => {
            println!("wasmtime serve: skipped ({err:#})");
            None
        }
    };
    let settings = Settings {
        threads: args.threads,
        connections: args.connections,
        seconds: args.seconds,
    };
    println!(
        "skiff bench http: {} served by a Wasm pod, wrk -t{} -c{} -d{}s --latency",
        guest.display(),
        args.threads,
        args.connections,
        args.seconds
    );
    let figures = if netns::available() {
        println!("(in a network namespace of its own; the pod on a bridge, as `skiff server --dev` runs it)");
        netns::run(move || measure(settings, guest, args.data_dir, wasmtime, true)).await?
    } else {
        println!("(not root: the pod shares the network; no ClusterIP without root)");
        measure(settings, guest, args.data_dir, wasmtime, false).await?
    };
    print_ratios(&figures);
    Ok(())
}

/// Loads each path in turn: the pod directly, its ClusterIP (with `bridge`), the Ingress,
/// then `wasmtime serve` once the cluster has stopped.
async fn measure(
    settings: Settings,
    guest: PathBuf,
    data_dir: Option<PathBuf>,
    wasmtime: Option<PathBuf>,
    bridge: bool,
) -> anyhow::Result<Figures> {
    let tmp = tempfile_dir(data_dir.as_deref())?;
    let ingress = SocketAddr::from((Ipv4Addr::LOCALHOST, wrk::free_port()?));
    let port = if bridge { POD_PORT } else { wrk::free_port()? };
    let image_dir = guest.parent().context("the guest has a directory")?;
    let network = NodeNetwork {
        ingress: IngressListen {
            http: Some(ingress),
            https: None,
        },
        bridge,
    };
    let cluster = DevCluster::start_with_network(tmp.path(), image_dir, 10, network).await?;
    let cluster_ip = deploy(&cluster.client, &guest, port).await?;
    let mut figures = Figures::default();

    let pod_ip = if bridge {
        pod_ip(&cluster.client).await?
    } else {
        Ipv4Addr::LOCALHOST.into()
    };
    let direct = SocketAddr::new(pod_ip, port);
    wrk::wait_listening(direct).await?;
    let load = wrk::run(settings, direct).await?;
    load.print(&format!("skiff pod, direct ({direct})"));
    figures.direct = Some(load);

    if bridge {
        let service = SocketAddr::new(cluster_ip, 80);
        wrk::wait_answering(service).await?;
        let load = wrk::run(settings, service).await?;
        load.print(&format!("through the ClusterIP ({service})"));
        figures.cluster_ip = Some(load);
    }

    wrk::wait_answering(ingress).await?;
    let load = wrk::run(settings, ingress).await?;
    load.print(&format!("through the Ingress ({ingress})"));
    figures.ingress = Some(load);
    cluster.shutdown().await;

    if let Some(wasmtime) = wasmtime {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, wrk::free_port()?));
        let mut serve = wasmtime_cli::serve(&wasmtime, &guest, addr)?;
        wrk::wait_listening(addr).await?;
        let load = wrk::run(settings, addr).await?;
        load.print(&wasmtime_cli::version(&wasmtime).await?);
        figures.wasmtime = Some(load);
        serve.kill().await?;
    }
    Ok(figures)
}

/// Creates the pod listening on `port`, a Service (port 80) and an Ingress (`/`) in front of
/// it; returns the Service's ClusterIP.
async fn deploy(client: &Client, guest: &std::path::Path, port: u16) -> anyhow::Result<IpAddr> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "http-bench", "labels": {"app": "http-bench"}},
        "spec": {"containers": [{
            "name": "http", "image": format!("file:{}", guest.display()),
            "ports": [{"containerPort": port}],
            "env": [{"name": "POD_NAME", "value": "http-bench"}]}]}
    });
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "http-bench"},
        "spec": {"selector": {"app": "http-bench"}, "ports": [{"port": 80, "targetPort": port}]}
    });
    let route = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "http-bench"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "http-bench", "port": {"number": 80}}}}]}}]}
    });
    client.create(kind("pods")?, Some("default"), &pod).await?;
    let service = client
        .create(kind("services")?, Some("default"), &service)
        .await?;
    client
        .create(kind("ingresses")?, Some("default"), &route)
        .await?;
    service["spec"]["clusterIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok())
        .with_context(|| format!("the Service has no ClusterIP: {service}"))
}

/// The pod's address once it runs.
async fn pod_ip(client: &Client) -> anyhow::Result<IpAddr> {
    let deadline = Instant::now() + POD_TIMEOUT;
    loop {
        let pod: Value = client
            .get(kind("pods")?, Some("default"), "http-bench")
            .await?;
        let ip = pod["status"]["podIP"]
            .as_str()
            .and_then(|ip| ip.parse().ok());
        if let (Some(ip), "Running") = (ip, pod["status"]["phase"].as_str().unwrap_or("")) {
            return Ok(ip);
        }
        if Instant::now() > deadline {
            bail!(
                "the pod has no address and does not run after {POD_TIMEOUT:?}: {}",
                pod["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ratios of requests per second the goals of issue 13 name.
fn print_ratios(figures: &Figures) {
    let Some(direct) = &figures.direct else {
        return;
    };
    let ratio = |what: &str, part: &Load, whole: &Load, goal: &str| {
        println!(
            "{what:<40} {:>8.0}%       (goal {goal})",
            100.0 * part.requests_per_sec / whole.requests_per_sec
        );
    };
    if let Some(reference) = &figures.wasmtime {
        ratio("skiff direct / wasmtime serve", direct, reference, ">= 80%");
    }
    if let Some(load) = &figures.cluster_ip {
        ratio(
            "ClusterIP / direct",
            load,
            direct,
            ">= 90%: the proxy adds under 10%",
        );
    }
    if let Some(load) = &figures.ingress {
        ratio(
            "Ingress / direct",
            load,
            direct,
            ">= 90%: the proxy adds under 10%",
        );
    }
}
