//! `skiff bench http`: requests per second and p50/p99 latency of a wasi:http component (the
//! `http-echo` example by default) served by a Wasm pod on an in-process dev cluster, measured
//! with Debian's `wrk` straight at the pod's port and through the agent's Ingress listener (a
//! Service and an Ingress in front of the pod); and of `wasmtime serve` on the same component
//! in the same run when a `wasmtime` executable is on PATH.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use skiff_api::resources;
use skiff_node_runtime::agent::IngressListen;

use crate::dev_cluster::DevCluster;
use crate::{guest_path, tempfile_dir};

/// Longest wait for a server to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Where the throwaway cluster keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// What one wrk run measured.
#[derive(Debug, PartialEq)]
struct Load {
    requests_per_sec: f64,
    p50: String,
    p99: String,
}

pub async fn http(args: BenchHttpArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.guest)?;
    let tmp = tempfile_dir(args.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    println!(
        "skiff bench http: {} served by a Wasm pod, wrk -t{} -c{} -d{}s",
        guest.display(),
        args.threads,
        args.connections,
        args.seconds
    );
    let port = free_port()?;
    let ingress_port = free_port()?;
    let image_dir = guest.parent().context("the guest has a directory")?;
    let ingress = IngressListen {
        http: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, ingress_port))),
        https: None,
    };
    let cluster = DevCluster::start_with_ingress(&dir, image_dir, 10, ingress).await?;
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
    for (kind, object) in [
        ("pods", &pod),
        ("services", &service),
        ("ingresses", &route),
    ] {
        let kind = resources::by_name(kind).expect("a served kind");
        cluster.client.create(kind, Some("default"), object).await?;
    }
    wait_listening(port).await?;
    let skiff = wrk(&args, port).await?;
    print("skiff pod", &skiff);
    wait_answering(ingress_port).await?;
    let through = wrk(&args, ingress_port).await?;
    print("skiff pod through the Ingress", &through);
    println!(
        "Ingress / direct: {:.0}%",
        100.0 * through.requests_per_sec / skiff.requests_per_sec
    );
    cluster.shutdown().await;

    let Ok(wasmtime) = which("wasmtime") else {
        println!("wasmtime serve: skipped (no `wasmtime` on PATH; `cargo install wasmtime-cli`)");
        return Ok(());
    };
    let port = free_port()?;
    let mut serve = tokio::process::Command::new(wasmtime)
        .args([
            "serve",
            "-Scli",
            "--env",
            "POD_NAME=wasmtime-serve",
            "--addr",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .arg(&guest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting wasmtime serve")?;
    wait_listening(port).await?;
    let reference = wrk(&args, port).await?;
    print("wasmtime serve", &reference);
    println!(
        "skiff / wasmtime serve: {:.0}%",
        100.0 * skiff.requests_per_sec / reference.requests_per_sec
    );
    serve.kill().await?;
    Ok(())
}

fn print(what: &str, load: &Load) {
    println!(
        "{what}: {:.0} req/s, p50 {}, p99 {}",
        load.requests_per_sec, load.p50, load.p99
    );
}

/// A TCP port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Waits until 127.0.0.1:`port` accepts connections.
async fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {LISTEN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until 127.0.0.1:`port` answers `GET /bench` with 200 (the Ingress routes once the
/// pod is a ready endpoint of its Service).
async fn wait_answering(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while !answers_ok(port).await {
        if Instant::now() > deadline {
            bail!("port {port} does not answer GET /bench with 200 after {LISTEN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn answers_ok(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
        return false;
    };
    let request = b"GET /bench HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request).await.is_ok()
        && stream.read_exact(&mut head).await.is_ok()
        && head.ends_with(b" 200")
}

/// The path of executable `name` on PATH.
fn which(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("no {name} on PATH"))
}

/// Runs wrk against 127.0.0.1:`port` and reads its figures.
async fn wrk(args: &BenchHttpArgs, port: u16) -> anyhow::Result<Load> {
    let wrk = which("wrk").context("install Debian's wrk (apt-get install wrk)")?;
    let out = tokio::process::Command::new(wrk)
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.seconds))
        .arg("--latency")
        .arg(format!("http://127.0.0.1:{port}/bench"))
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Requests per second and the 50th and 99th percentile latencies from wrk's `--latency` output.
fn parse_wrk(out: &str) -> Option<Load> {
    let field = |prefix: &str| {
        out.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_string())
    };
    Some(Load {
        requests_per_sec: field("Requests/sec:")?.parse().ok()?,
        p50: field("50%")?,
        p99: field("99%")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_figures() {
        let out = "Running 10s test @ http://127.0.0.1:18080/\n  Latency Distribution\n     50%   14.37ms\n     75%   18.62ms\n     90%   23.99ms\n     99%   51.36ms\n  21156 requests in 10.02s, 2.91MB read\nRequests/sec:   2111.85\nTransfer/sec:    296.98KB\n";
        assert_eq!(
            parse_wrk(out),
            Some(Load {
                requests_per_sec: 2111.85,
                p50: "14.37ms".into(),
                p99: "51.36ms".into(),
            })
        );
        assert_eq!(parse_wrk("wrk: connection refused"), None);
    }
}
