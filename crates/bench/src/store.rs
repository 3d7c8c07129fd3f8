//! `skiff bench store`: write throughput and latency of 1- and 3-server control planes through
//! the public API, leader failover time (kill -9 of the leader until the first acknowledged
//! write), and how long a follower that missed many entries takes to catch up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use skiff_client::Client;

use crate::figures::{ms, percentile};
use crate::server::wait_listening;
use crate::tempfile_dir;

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
    /// Measure every write run twice: with the Raft peers on plain TCP (`--insecure-peers`),
    /// then on mutual TLS (`--peer-*` flags). Without it the servers use their default peer
    /// TLS.
    #[arg(long)]
    pub peer_tls: bool,
}

/// How long a measured condition may take before the run gives up.
const WAIT: Duration = Duration::from_secs(120);

pub async fn store(args: BenchStoreArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    println!("writes: ConfigMaps of 256 bytes of data, created through the HTTP API");
    let transports: &[bool] = if args.peer_tls {
        &[false, true]
    } else {
        &[false]
    };
    for &servers in &args.servers {
        for &clients in &args.clients {
            for &tls in transports {
                let transport = if tls { "peer TLS" } else { "plain TCP" };
                let run_dir = dir.path().join(format!("s{servers}-c{clients}-tls{tls}"));
                let peer_flags = if !args.peer_tls {
                    Vec::new()
                } else if tls {
                    crate::peer_certs::write_peer_files(&run_dir.join("peer-tls"), servers)?
                } else {
                    vec!["--insecure-peers".to_string()]
                };
                let mut group = Members::start(&run_dir, servers, &peer_flags).await?;
                group.wait_serving().await?;
                let figures = write_load(&group, clients, args.writes, "w").await?;
                let label = if args.peer_tls && servers > 1 {
                    format!(" ({transport})")
                } else {
                    String::new()
                };
                println!(
                    "{servers} server(s), {clients:>3} client(s){label}: {:>7.0} writes/s, p50 {}, p99 {} ({} writes, {} retried)",
                    figures.per_second,
                    ms(figures.p50),
                    ms(figures.p99),
                    args.writes,
                    figures.retries
                );
                group.stop_all();
                if servers == 1 {
                    // A cluster of one has no peers: its figures are the same either way.
                    break;
                }
            }
        }
    }
    if args.failovers > 0 {
        let mut group = Members::start(&dir.path().join("failover"), 3, &[]).await?;
        group.wait_serving().await?;
        let mut samples = Vec::new();
        for round in 0..args.failovers {
            samples.push(failover(&mut group, round).await?);
        }
        samples.sort();
        println!(
            "leader failover (kill -9 of the leader until the first acknowledged write, 8 writers): {}",
            samples.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")
        );
        group.stop_all();
    }
    if args.catch_up_entries > 0 {
        let mut group = Members::start(&dir.path().join("catch-up"), 3, &[]).await?;
        group.wait_serving().await?;
        let leader = group.wait_leader().await?;
        let lagging = (leader + 1) % 3;
        group.kill9(lagging);
        write_load(&group, 64, args.catch_up_entries, "c").await?;
        let leader = group.wait_leader().await?;
        let target = group.status(leader).await?["commitIndex"]
            .as_u64()
            .context("commitIndex")?;
        let restarted = Instant::now();
        group.restart(lagging)?;
        wait_for(&format!("the follower to apply index {target}"), || async {
            let applied = group.status(lagging).await.ok()?["appliedIndex"].as_u64()?;
            (applied >= target).then_some(())
        })
        .await?;
        let took = restarted.elapsed();
        let by_snapshot = std::fs::read_to_string(&group.logs[lagging])
            .unwrap_or_default()
            .contains("installing a snapshot from the leader");
        println!(
            "follower {} entries behind caught up in {} after its restart ({})",
            args.catch_up_entries,
            ms(took),
            if by_snapshot {
                "by snapshot"
            } else {
                "from the log"
            }
        );
        group.stop_all();
    }
    Ok(())
}

/// What one write run measured.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    retries: usize,
}

/// `clients` concurrent writers create `writes` ConfigMaps in all, each writer preferring a
/// different server; failed writes are retried and counted.
async fn write_load(
    group: &Members,
    clients: usize,
    writes: usize,
    prefix: &str,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = group.client_preferring(c)?;
        let (next, retries, prefix) = (next.clone(), retries.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let name = format!("{prefix}-{i}");
                let begun = Instant::now();
                for attempt in 0.. {
                    match create(&client, &name).await {
                        Ok(()) => break,
                        Err(_) if attempt < 100 => {
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(err) => return Err(err.context(format!("writing {name}"))),
                    }
                }
                latencies.push(begun.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Figures {
        per_second: writes as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        retries: retries.load(Ordering::Relaxed),
    })
}

/// Creates one ConfigMap; a 409 means an earlier attempt of the same write did apply.
async fn create(client: &Client, name: &str) -> anyhow::Result<()> {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                    "data": {"value": "x".repeat(256)}});
    let kind = crate::cluster::kind("configmaps")?;
    match client.create(kind, Some("default"), &cm).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_already_exists() => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Kills the leader under a steady write load and times the first acknowledgement of a write
/// sent after the kill; then restarts the killed member for the next round.
async fn failover(group: &mut Members, round: usize) -> anyhow::Result<Duration> {
    // (sent, acknowledged) of every successful write.
    let acks: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = group.client_preferring(w)?;
        let (acks, stop) = (acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let sent = Instant::now();
                if create(&client, &format!("f{round}-{w}-{i}")).await.is_ok() {
                    acks.lock().expect("acks").push((sent, Instant::now()));
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader = group.wait_leader().await?;
    let killed = Instant::now();
    group.kill9(leader);
    let first = wait_for("an acknowledged write sent after the kill", || async {
        acks.lock()
            .expect("acks")
            .iter()
            .filter(|(sent, _)| *sent > killed)
            .map(|(_, acked)| *acked)
            .min()
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    group.restart(leader)?;
    group.wait_leader().await?;
    Ok(first - killed)
}

/// Polls `check` every 20 ms until it yields a value, for at most `WAIT`.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A control plane of `skiff server` child processes on loopback, killed when dropped.
pub(crate) struct Members {
    /// The `skiff` executable the members run.
    exe: PathBuf,
    children: Vec<Option<Child>>,
    args: Vec<Vec<String>>,
    logs: Vec<std::path::PathBuf>,
    /// Each member's API URL.
    pub(crate) urls: Vec<String>,
    /// The data dir whose admin credential the benchmark uses (every member's is valid).
    admin: std::path::PathBuf,
}

/// A port on 127.0.0.1 that was free a moment ago (for Raft peers, which every member must
/// know before any starts).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Members {
    /// Starts `size` members; each API listens on a port of the system's choice, which it
    /// keeps across restarts. The Raft peer ports must be known before any member starts.
    /// Every member gets `extra` flags.
    pub(crate) async fn start(
        dir: &Path,
        size: usize,
        extra: &[String],
    ) -> anyhow::Result<Members> {
        Self::start_exe(std::env::current_exe()?, dir, size, extra).await
    }

    /// Starts `size` members as [`start`](Self::start) does, running the `skiff` executable
    /// `exe` (another build, to compare with).
    pub(crate) async fn start_exe(
        exe: PathBuf,
        dir: &Path,
        size: usize,
        extra: &[String],
    ) -> anyhow::Result<Members> {
        std::fs::create_dir_all(dir)?;
        let peers: Vec<String> = (0..size)
            .map(|i| Ok(format!("s{}=127.0.0.1:{}", i + 1, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let mut group = Members {
            exe,
            children: Vec::new(),
            args: Vec::new(),
            logs: Vec::new(),
            urls: Vec::new(),
            admin: dir.join("s1"),
        };
        // Every member shares one cluster CA (as `skiff certificate create-ca` makes it).
        let ca_dir = dir.join("cluster-ca");
        if skiff_control_plane::pki::ClusterCa::load(&ca_dir)?.is_none() {
            skiff_control_plane::pki::ClusterCa::create()?.write(&ca_dir)?;
        }
        for i in 0..size {
            let name = format!("s{}", i + 1);
            let mut args: Vec<String> = vec![
                "server".into(),
                "--name".into(),
                name.clone(),
                "--data-dir".into(),
                dir.join(&name).display().to_string(),
                "--listen".into(),
                "127.0.0.1:0".into(),
            ];
            if size > 1 {
                args.extend([
                    "--initial-cluster".into(),
                    peers.join(","),
                    "--cluster-ca".into(),
                    ca_dir.display().to_string(),
                ]);
            }
            args.extend(extra.iter().cloned());
            group.args.push(args);
            group.logs.push(dir.join(format!("{name}.log")));
            group.children.push(None);
            group.restart(i)?;
        }
        // Every member is started before any is waited for: none serves alone.
        for i in 0..size {
            let child = group.children[i].as_mut().context("just started")?;
            let url = wait_listening(child, &group.logs[i]).await?;
            let listen = group.args[i]
                .iter()
                .position(|a| a == "--listen")
                .context("--listen")?;
            group.args[i][listen + 1] = url
                .split_once("://")
                .map_or(url.as_str(), |(_, authority)| authority)
                .to_string();
            group.urls.push(url);
        }
        Ok(group)
    }

    fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.logs[i])?;
        let child = Command::new(&self.exe)
            .args(&self.args[i])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff server")?;
        self.children[i] = Some(child);
        Ok(())
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn stop_all(&mut self) {
        for i in 0..self.children.len() {
            self.kill9(i);
        }
    }

    /// A client over every member, trying member `i % size` first.
    fn client_preferring(&self, i: usize) -> anyhow::Result<Client> {
        let n = self.urls.len();
        let rotated: Vec<String> = (0..n).map(|k| self.urls[(i + k) % n].clone()).collect();
        crate::server::admin_client(&rotated, &self.admin)
    }

    async fn status(&self, i: usize) -> anyhow::Result<Value> {
        Ok(
            crate::server::admin_client(std::slice::from_ref(&self.urls[i]), &self.admin)?
                .cluster_status(false)
                .await?,
        )
    }

    /// Waits until a write through the API succeeds (a leader is elected and has created the
    /// system namespaces).
    pub(crate) async fn wait_serving(&self) -> anyhow::Result<()> {
        let client = self.client_preferring(0)?;
        wait_for("the first write", || async {
            create(&client, "probe").await.ok()
        })
        .await
    }

    /// The index of the running member that leads, once one does.
    pub(crate) async fn wait_leader(&self) -> anyhow::Result<usize> {
        wait_for("a leader", || async {
            for i in (0..self.urls.len()).filter(|i| self.children[*i].is_some()) {
                if matches!(self.status(i).await, Ok(s) if s["role"] == "Leader") {
                    return Some(i);
                }
            }
            None
        })
        .await
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        self.stop_all();
    }
}
