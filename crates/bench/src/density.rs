//! `skiff bench density`: many idle Wasm pods on one node. A `skiff server` child process (so
//! the API objects live in its memory, not the agent's) and a real agent with the real Wasm
//! runtime in this process, running N `ticker` pods bound straight to the node. Reports how
//! many ran, how long until all did, and what each idle pod costs the agent's process: RSS,
//! memory mappings (against `vm.max_map_count`), file descriptors, threads, and CPU over an
//! idle window; and every pod the node refused, with its reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Value};
use skiff_client::{Client, ListParams};
use skiff_node_runtime::agent::{max_map_count, wasm_max_pods_here, Agent};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use tokio::sync::oneshot;

use crate::cluster::{join_token, kind, wait_nodes_ready};
use crate::deploy::guest_dir;
use crate::memory::memory_of;
use crate::server::{wait_ready, ServerUnderTest};
use crate::{guest_path, tempfile_dir, RunOpts};

#[derive(Args, Debug)]
pub struct BenchDensityArgs {
    /// Idle pods to run on the one node.
    #[arg(long, default_value_t = 1000)]
    pub pods: usize,
    /// Each pod's memory limit.
    #[arg(long, default_value = "8Mi")]
    pub memory_limit: String,
    /// The node's `--max-pods` (default: a Wasm node's default, from this machine's memory and
    /// `vm.max_map_count`).
    #[arg(long)]
    pub max_pods: Option<u32>,
    /// How long the idle CPU is measured, once all pods run.
    #[arg(long, default_value_t = 20)]
    pub idle_seconds: u64,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[command(flatten)]
    pub run: RunOpts,
}

const NODE: &str = "density-node";
const LABEL: &str = "skiff-bench-density";

/// What this process (the agent) holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss: u64,
    mappings: u64,
    fds: u64,
    threads: u64,
}

impl Sample {
    fn now() -> anyhow::Result<Sample> {
        let maps = std::fs::read("/proc/self/maps")?;
        let status = std::fs::read_to_string("/proc/self/status")?;
        let threads = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(Sample {
            rss: memory_of("self").map_or(0, |(rss, _)| rss),
            mappings: maps.iter().filter(|&&b| b == b'\n').count() as u64,
            fds: std::fs::read_dir("/proc/self/fd")?.count() as u64,
            threads,
        })
    }
}

/// Clock ticks per second in `/proc/PID/stat` (Linux's USER_HZ, 100 on every architecture
/// it exports to user space).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) process `pid` used so far.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

pub async fn density(args: BenchDensityArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.run.guest)?;
    let tmp = tempfile_dir(args.run.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    let mut server = ServerUnderTest::spawn(&dir.join("server"), 40).await?;
    let client = server.client()?;
    wait_ready(&client, &mut server).await?;
    let token = join_token(&client).await?;
    let limit = max_map_count();
    let max_pods = args.max_pods.unwrap_or_else(wasm_max_pods_here);
    println!(
        "skiff bench density: {} idle pods of {} (limit {}), max-pods {max_pods}, \
         vm.max_map_count {}",
        args.pods,
        guest.display(),
        args.memory_limit,
        limit.map_or("unknown".into(), |l| l.to_string()),
    );

    let runtime = Arc::new(WasmRuntime::new(dir.join("agent/wasm"))?);
    let mut builder = Agent::builder()
        .client(server.client()?)
        .token(token.to_string())
        .node_name(NODE)
        .data_dir(dir.join("agent"))
        .allow_image_dir(guest_dir(&guest))
        .runtime(runtime)
        .max_pods(max_pods)
        .without_listener()
        .without_tunnel();
    if let Some(limit) = limit {
        builder = builder.max_map_count(limit);
    }
    let agent = builder.build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    wait_nodes_ready(&client, 1, Duration::from_secs(30)).await?;
    let before = Sample::now()?;

    let started = Instant::now();
    create_pods(&client, &guest, &args).await?;
    let created = started.elapsed();
    println!(
        "{} pods created in {:.1} s",
        args.pods,
        created.as_secs_f64()
    );
    let settled = wait_settled(&client, args.pods).await?;
    let all_running = started.elapsed();
    let running = settled.running;
    println!(
        "pods Running: {running} of {} after {:.1} s{}",
        args.pods,
        all_running.as_secs_f64(),
        if settled.timed_out {
            " (gave up waiting)"
        } else {
            ""
        }
    );
    for (reason, (count, message)) in &settled.failed {
        println!("pods refused or failed: {count} {reason}: {message}");
    }
    if settled.failed.is_empty() {
        println!("pods refused or failed: none");
    }

    // Let start-up garbage settle before the idle figures.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = Sample::now()?;
    let per_pod = |from: u64, to: u64| to.saturating_sub(from) as f64 / running.max(1) as f64;
    println!(
        "agent RSS: {} -> {} MiB, {:.1} KiB per idle pod (the pods' API objects are held by \
         the server process, except the agent's own copy of each pod)",
        before.rss >> 20,
        after.rss >> 20,
        per_pod(before.rss, after.rss) / 1024.0
    );
    println!(
        "memory mappings: {} -> {} ({:.2} per pod){}",
        before.mappings,
        after.mappings,
        per_pod(before.mappings, after.mappings),
        limit.map_or(String::new(), |l| format!(
            ", {:.1}% of vm.max_map_count {l}",
            after.mappings as f64 * 100.0 / l as f64
        ))
    );
    println!(
        "file descriptors: {} -> {} ({:.3} per pod); threads: {} -> {}",
        before.fds,
        after.fds,
        per_pod(before.fds, after.fds),
        before.threads,
        after.threads
    );
    let window = Duration::from_secs(args.idle_seconds);
    let server_pid = server.pid().map(|p| p.to_string());
    let cpu = |pid: &str| cpu_seconds(pid).unwrap_or(0.0);
    let (agent_from, server_from) = (cpu("self"), server_pid.as_deref().map_or(0.0, cpu));
    tokio::time::sleep(window).await;
    let (agent_to, server_to) = (cpu("self"), server_pid.as_deref().map_or(0.0, cpu));
    println!(
        "idle CPU over {} s: agent {:.3} cores ({:.1} µs per pod per second), server {:.3} cores",
        args.idle_seconds,
        (agent_to - agent_from) / window.as_secs_f64(),
        (agent_to - agent_from) * 1e6 / window.as_secs_f64() / running.max(1) as f64,
        (server_to - server_from) / window.as_secs_f64()
    );
    server
        .check_running()
        .context("the server during the run")?;
    let end = Sample::now()?;
    println!(
        "after the idle window: agent RSS {} MiB ({:.1} KiB per pod), {} descriptors, {} \
         mappings",
        end.rss >> 20,
        per_pod(before.rss, end.rss) / 1024.0,
        end.fds,
        end.mappings
    );
    println!("agent still up: {}", !agent.is_finished());
    let _ = stop.send(());
    let _ = agent.await;
    Ok(())
}

/// Creates the pods, bound to the node (no scheduler in the way of what is measured).
async fn create_pods(
    client: &Client,
    guest: &std::path::Path,
    args: &BenchDensityArgs,
) -> anyhow::Result<()> {
    let pods = kind("pods")?;
    let image = format!("file:{}", guest.display());
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..args.pods)
        .map(|i| {
            let body = json!({
                "metadata": {"name": format!("idle-{i:05}"), "labels": {"app": LABEL}},
                "spec": {"nodeName": NODE, "containers": [{
                    "name": "ticker", "image": image,
                    "env": [{"name": "MESSAGE", "value": "idle"}],
                    // An idle pod asks for little (the request defaults to the limit).
                    "resources": {"limits": {"memory": args.memory_limit},
                                  "requests": {"memory": "1Mi"}},
                }]},
            });
            async move {
                client
                    .create(pods, Some("default"), &body)
                    .await
                    .map(|_| ())
                    .with_context(|| format!("creating pod idle-{i:05}"))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// The pods once none is Pending any more (or the wait gave up).
struct Settled {
    running: usize,
    /// Failed pods by reason: how many, and one message.
    failed: BTreeMap<String, (usize, String)>,
    timed_out: bool,
}

/// Lists the pods every 2 s until each is Running or Failed, at most 60 s + 100 ms a pod.
async fn wait_settled(client: &Client, count: usize) -> anyhow::Result<Settled> {
    let pods = kind("pods")?;
    let deadline =
        Instant::now() + Duration::from_secs(60) + Duration::from_millis(100) * count as u32;
    let params = ListParams {
        label_selector: Some(format!("app={LABEL}")),
        ..ListParams::default()
    };
    loop {
        let list = client.list(pods, Some("default"), &params).await?;
        let items: &[Value] = list["items"].as_array().map_or(&[], |v| v.as_slice());
        let mut settled = Settled {
            running: 0,
            failed: BTreeMap::new(),
            timed_out: Instant::now() > deadline,
        };
        for pod in items {
            match pod["status"]["phase"].as_str() {
                Some("Running") => settled.running += 1,
                Some("Failed") => {
                    let reason = pod["status"]["reason"].as_str().unwrap_or("Failed");
                    let message = pod["status"]["message"].as_str().unwrap_or_default();
                    let entry = settled
                        .failed
                        .entry(reason.to_string())
                        .or_insert_with(|| (0, message.to_string()));
                    entry.0 += 1;
                }
                _ => {}
            }
        }
        let done = settled.running + settled.failed.values().map(|(n, _)| n).sum::<usize>();
        if done >= count || settled.timed_out {
            return Ok(settled);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
