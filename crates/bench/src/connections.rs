//! `skiff bench connections`: a flood of idle TCP connections against a `skiff server` child
//! process (issue 11, finding 4): the server's resident memory and open descriptors before,
//! during and after the flood, the latency of writes during it, and whether the store and
//! its health stayed sound.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use nix::sys::resource::{setrlimit, Resource};
use serde_json::json;
use skiff_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::figures::{ms, percentile};
use crate::memory::memory_of;
use crate::server::{wait_listening, wait_ready, ServerUnderTest};
use crate::tempfile_dir;

#[derive(Args, Debug)]
pub struct BenchConnectionsArgs {
    /// Idle connections to open at once.
    #[arg(long, default_value_t = 20_000)]
    pub connections: usize,
    /// The server's descriptor limit (soft and hard); default: this process's.
    #[arg(long)]
    pub nofile: Option<u64>,
    /// The server's `--idle-timeout`, in seconds.
    #[arg(long, default_value_t = 10)]
    pub idle_timeout: u64,
    /// Writes (ConfigMaps, one client) timed before and during the flood.
    #[arg(long, default_value_t = 300)]
    pub writes: usize,
    /// Where the server keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

/// How long one connect or write may take before it counts as failed.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn connections(args: BenchConnectionsArgs) -> anyhow::Result<()> {
    // The flood needs descriptors of its own.
    skiff_net::descriptors::raise_limit().context("raising this process's descriptor limit")?;
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let data_dir = dir.path().join("server");
    let mut server = spawn(&data_dir, &args).await?;
    measure(&mut server, &data_dir.with_extension("log"), &args).await
}

async fn measure(
    server: &mut ServerUnderTest,
    log_path: &Path,
    args: &BenchConnectionsArgs,
) -> anyhow::Result<()> {
    let url = server.url();
    let client = server.client()?;
    wait_ready(&client, server).await?;
    println!(
        "skiff server, descriptor limit {}, --idle-timeout {} s; {} idle connections",
        args.nofile
            .map_or_else(|| "inherited".to_string(), |n| n.to_string()),
        args.idle_timeout,
        args.connections
    );
    report(server, "before")?;
    let (p50, p99, failed) = timed_writes(&client, args.writes, "before").await;
    println!(
        "  writes before: p50 {}, p99 {}, {failed} failed",
        ms(p50),
        ms(p99)
    );

    let addr = url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let mut flood = Vec::with_capacity(args.connections);
    let mut refused = 0;
    for _ in 0..args.connections {
        match tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => flood.push(stream),
            _ => refused += 1,
        }
    }
    println!(
        "  flood: {} connected, {refused} not, in {}",
        flood.len(),
        ms(started.elapsed())
    );
    report(server, "during")?;
    let (p50, p99, failed) = timed_writes(&client, args.writes, "during").await;
    println!(
        "  writes during the flood: p50 {}, p99 {}, {failed} failed",
        ms(p50),
        ms(p99)
    );
    report(server, "during, after the writes")?;

    // Wait out the idle timeout, then count the connections the server closed.
    tokio::time::sleep(Duration::from_secs(args.idle_timeout + 5)).await;
    let mut closed = 0;
    for stream in &mut flood {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    println!(
        "  {} s after the flood: {closed} of {} closed by the server",
        args.idle_timeout + 5,
        flood.len()
    );
    report(server, "after")?;
    drop(flood);
    println!("  /healthz after: {}", health(&addr).await?);
    let log = std::fs::read_to_string(log_path)?;
    let store_failed = log.contains("raft storage failed") || log.contains("stops serving");
    println!(
        "  store failed: {}; accepting paused for want of descriptors: {}",
        if store_failed { "YES" } else { "no" },
        if log.contains("out of file descriptors") {
            "yes"
        } else {
            "no"
        }
    );
    Ok(())
}

/// `writes` ConfigMap creations one after the other: p50, p99 and how many failed.
async fn timed_writes(client: &Client, writes: usize, prefix: &str) -> (Duration, Duration, usize) {
    let kind = crate::cluster::kind("configmaps").expect("configmaps is a known kind");
    let mut latencies = Vec::with_capacity(writes);
    let mut failed = 0;
    for i in 0..writes {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("{prefix}-{i}")}, "data": {"v": "x"}});
        let begun = Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, client.create(kind, Some("default"), &cm)).await {
            Ok(Ok(_)) => latencies.push(begun.elapsed()),
            _ => failed += 1,
        }
    }
    latencies.sort();
    (
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        failed,
    )
}

/// Starts `skiff server` (this executable) with the benchmark's idle timeout and
/// descriptor limit, and waits until it listens.
async fn spawn(data_dir: &Path, args: &BenchConnectionsArgs) -> anyhow::Result<ServerUnderTest> {
    std::fs::create_dir_all(data_dir)?;
    let log_path = data_dir.with_extension("log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["server", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--idle-timeout", &args.idle_timeout.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(limit) = args.nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                setrlimit(Resource::RLIMIT_NOFILE, limit, limit).map_err(std::io::Error::from)
            });
        }
    }
    let mut child = command.spawn().context("starting skiff server")?;
    match wait_listening(&mut child, &log_path).await {
        Ok(url) => Ok(ServerUnderTest::Child {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Prints the server's resident memory and open descriptors.
fn report(server: &ServerUnderTest, when: &str) -> anyhow::Result<()> {
    let pid = server
        .pid()
        .context("the server is a child process")?
        .to_string();
    let (rss, _) = memory_of(&pid).context("reading the server's memory")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    println!(
        "  {when}: RSS {:.1} MiB, {fds} open descriptors",
        rss as f64 / f64::from(1 << 20)
    );
    Ok(())
}

/// The status line and body of `GET /healthz`, on a connection of its own.
async fn health(addr: &str) -> anyhow::Result<String> {
    let mut stream = tokio::time::timeout(OP_TIMEOUT, TcpStream::connect(addr)).await??;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tokio::time::timeout(OP_TIMEOUT, stream.read_to_string(&mut response)).await??;
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
    Ok(format!("{status}: {body}"))
}
