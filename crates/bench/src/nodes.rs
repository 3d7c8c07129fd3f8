//! `skiff bench nodes`: scale figures with hollow nodes. A real `skiff server` runs as a child
//! process; this process runs N real agent loops on the hollow runtime (a SIMULATOR, like
//! kubemark: it runs no workload), then creates Deployments and reports how fast pods are
//! bound and reported Running, API latency during the run, and the server's memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use serde_json::{json, Value};
use skiff_client::{Client, ListParams};
use skiff_node_runtime::agent::Agent;
use skiff_node_runtime::runtime::hollow::HollowRuntime;
use tokio::sync::watch;

use crate::cluster::{join_token, kind, wait_nodes_ready};
use crate::figures::{ms, percentile};
use crate::memory::memory_of;
use crate::probe::probe_api;
use crate::server::{wait_ready, ServerUnderTest};
use crate::tempfile_dir;

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
    /// Measure this server instead of starting `skiff server` as a child process: the
    /// `--server` given on the command line (the binary fills it in).
    #[arg(skip)]
    pub server: Option<String>,
    /// The credentials for `server`: the kubeconfig's (`--kubeconfig`, `$KUBECONFIG`, ...) or
    /// `--token` (the binary fills them in).
    #[arg(skip)]
    pub credentials: skiff_client::Credentials,
    /// The started server's `--node-grace-seconds` (the hollow nodes heartbeat as the
    /// kubelet does: a 40 s Lease renewed every 10 s, the Node status every 5 minutes).
    #[arg(long, default_value_t = 40)]
    pub node_grace_seconds: u64,
    /// Where the started server and the nodes keep their data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The label every benchmark pod carries.
const POD_LABEL: &str = "skiff-bench=pods";
/// Agents started at once (registration bursts).
const START_WAVE: usize = 100;

pub async fn nodes(args: BenchNodesArgs) -> anyhow::Result<()> {
    let tmp = tempfile_dir(args.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    let mut server = match &args.server {
        Some(url) => ServerUnderTest::External {
            url: url.clone(),
            credentials: args.credentials.clone(),
        },
        None => ServerUnderTest::spawn(&dir.join("server"), args.node_grace_seconds).await?,
    };
    let url = server.url();
    let client = server.client()?;
    wait_ready(&client, &mut server).await?;
    let token = join_token(&client).await?;
    println!(
        "skiff bench nodes: {} hollow nodes (simulated), {} pods, server {url}",
        args.nodes, args.pods
    );

    // Nodes: real agent loops on the hollow runtime, joined in waves.
    let started = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let mut agents = Vec::with_capacity(args.nodes);
    // One API client (and connection pool) for every hollow node: thousands of separate pools
    // would exhaust the process's open files before the server is measured.
    let shared = server.client()?;
    for i in 0..args.nodes {
        let runtime = Arc::new(HollowRuntime::new());
        let agent = Agent::builder()
            .client(shared.clone())
            .token(token.to_string())
            .node_name(format!("hollow-{i:05}"))
            .data_dir(dir.join(format!("nodes/{i}")))
            .labels(
                [(
                    "topology.kubernetes.io/zone".to_string(),
                    format!("zone-{}", i % 3),
                )]
                .into(),
            )
            .capacity(4_000, 16 << 30, 110)
            .images(runtime.clone())
            .runtime(runtime)
            .without_local_storage()
            .without_tunnel()
            .without_listener()
            .build()?;
        let mut stopped = stopped.clone();
        agents.push(tokio::spawn(agent.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })));
        if i % START_WAVE == START_WAVE - 1 {
            wait_nodes_ready(&client, i + 1, Duration::from_secs(120)).await?;
        }
    }
    wait_nodes_ready(&client, args.nodes, Duration::from_secs(300)).await?;
    println!(
        "{} nodes registered and Ready in {:.1} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );

    // Pods, with the API probed all along.
    let (probe_stop, probe_stopped) = watch::channel(false);
    let probe = tokio::spawn(probe_api(client.clone(), probe_stopped));
    let times = run_pods(&client, &args).await;
    probe_stop.send_replace(true);
    let latencies = probe.await.context("the API probe")?;
    let times = times?;
    report_pods(&times, args.pods);
    for (what, mut spans) in latencies {
        spans.sort();
        println!(
            "API {what:<28} p50 {} p99 {} max {} ({} calls)",
            ms(percentile(&spans, 50)),
            ms(percentile(&spans, 99)),
            ms(spans.last().copied().unwrap_or_default()),
            spans.len()
        );
    }
    if let Some((rss, peak)) = server.pid().and_then(|pid| memory_of(&pid.to_string())) {
        println!(
            "control plane memory: RSS {} MiB now, peak {} MiB",
            rss >> 20,
            peak >> 20
        );
    }
    if let Some((rss, _)) = memory_of("self") {
        println!(
            "this process (hollow nodes): RSS {} MiB, {} KiB per node",
            rss >> 20,
            (rss >> 10) / args.nodes.max(1) as u64
        );
    }

    stop.send_replace(true);
    for agent in agents {
        let _ = tokio::time::timeout(Duration::from_secs(30), agent).await;
    }
    server.stop();
    Ok(())
}

/// When each pod was first seen, bound and Running; and when the run started.
struct PodTimes {
    started: Instant,
    created: HashMap<String, Instant>,
    bound: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

/// Creates the Deployments and follows their pods until all run (or the time is up).
async fn run_pods(client: &Client, args: &BenchNodesArgs) -> anyhow::Result<PodTimes> {
    let pods = kind("pods")?;
    let params = ListParams {
        label_selector: Some(POD_LABEL.into()),
        field_selector: None,
    };
    let started = Instant::now();
    let mut times = PodTimes {
        started,
        created: HashMap::new(),
        bound: HashMap::new(),
        running: HashMap::new(),
    };
    let mut version = relist(client, &params, &mut times).await?;
    let mut events = client.watch(pods, None, &params, &version).await?;
    let creator = tokio::spawn(create_deployments(
        client.clone(),
        args.pods,
        args.per_deployment,
    ));
    let timeout = Duration::from_secs(120) + Duration::from_millis(args.pods as u64 * 20);
    let deadline = tokio::time::Instant::now() + timeout;
    while times.running.len() < args.pods {
        let Ok(event) = tokio::time::timeout_at(deadline, events.next()).await else {
            println!(
                "gave up after {timeout:?}: {} created, {} bound, {} Running",
                times.created.len(),
                times.bound.len(),
                times.running.len()
            );
            break;
        };
        let event = match event {
            Some(Ok(event)) => event,
            // The server ends watches that fall behind; go on from the last event seen, or
            // list again when that is older than the server's history (as a reflector does).
            None => {
                events = match client.watch(pods, None, &params, &version).await {
                    Err(err) if err.is_gone() => {
                        version = relist(client, &params, &mut times).await?;
                        client.watch(pods, None, &params, &version).await?
                    }
                    other => other?,
                };
                continue;
            }
            Some(Err(err)) if err.is_gone() => {
                version = relist(client, &params, &mut times).await?;
                events = client.watch(pods, None, &params, &version).await?;
                continue;
            }
            Some(Err(err)) => return Err(err.into()),
        };
        if let Some(v) = event.object["metadata"]["resourceVersion"].as_str() {
            version = v.to_string();
        }
        times.observe(&event.object, Instant::now());
    }
    creator.await.context("creating deployments")??;
    Ok(times)
}

impl PodTimes {
    /// Records what `pod` shows at `now`, for the first time seen.
    fn observe(&mut self, pod: &Value, now: Instant) {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.created.entry(name.clone()).or_insert(now);
        if pod["spec"]["nodeName"].is_string() {
            self.bound.entry(name.clone()).or_insert(now);
        }
        if pod["status"]["phase"] == "Running" {
            self.running.entry(name).or_insert(now);
        }
    }
}

/// Lists the bench's pods, records them, and returns the list's resourceVersion.
async fn relist(
    client: &Client,
    params: &ListParams,
    times: &mut PodTimes,
) -> anyhow::Result<String> {
    let list = client.list(kind("pods")?, None, params).await?;
    let now = Instant::now();
    for pod in list["items"].as_array().into_iter().flatten() {
        times.observe(pod, now);
    }
    Ok(list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// `count` pods as Deployments of at most `per` replicas each.
async fn create_deployments(client: Client, count: usize, per: usize) -> anyhow::Result<()> {
    let deployments = kind("deployments")?;
    let per = per.max(1);
    for (i, start) in (0..count).step_by(per).enumerate() {
        let replicas = per.min(count - start);
        let name = format!("bench-{i:04}");
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name, "skiff-bench": "pods"}},
                    "spec": {"containers": [{
                        "name": "app", "image": "registry.example/hollow/pause:1",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
                    }]}
                }
            }
        });
        client
            .create(deployments, Some("default"), &deployment)
            .await?;
    }
    Ok(())
}

fn report_pods(times: &PodTimes, wanted: usize) {
    let last = |map: &HashMap<String, Instant>| {
        map.values()
            .max()
            .map(|t| t.saturating_duration_since(times.started))
            .unwrap_or_default()
    };
    let spans = |from: &HashMap<String, Instant>, to: &HashMap<String, Instant>| {
        let mut spans: Vec<Duration> = to
            .iter()
            .filter_map(|(pod, at)| from.get(pod).map(|s| at.saturating_duration_since(*s)))
            .collect();
        spans.sort();
        spans
    };
    let all_bound = last(&times.bound);
    println!(
        "pods bound: {} of {wanted} in {:.1} s = {:.0} pods/s",
        times.bound.len(),
        all_bound.as_secs_f64(),
        times.bound.len() as f64 / all_bound.as_secs_f64().max(0.001)
    );
    let all_running = last(&times.running);
    println!(
        "pods Running: {} of {wanted} in {:.1} s = {:.0} pods/s",
        times.running.len(),
        all_running.as_secs_f64(),
        times.running.len() as f64 / all_running.as_secs_f64().max(0.001)
    );
    for (what, s) in [
        ("created -> bound", spans(&times.created, &times.bound)),
        ("created -> Running", spans(&times.created, &times.running)),
    ] {
        println!(
            "per pod {what:<20} p50 {} p99 {}",
            ms(percentile(&s, 50)),
            ms(percentile(&s, 99))
        );
    }
}
