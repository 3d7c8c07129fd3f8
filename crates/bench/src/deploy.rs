//! `skiff bench deploy`: start-up figures on an in-process dev cluster (real API server, store,
//! controllers, scheduler, agent and wasmtime; only the network is loopback).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use skiff_api::resources;
use skiff_client::{Client, ListParams, WatchStream};
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerRuntime, ContainerState, FileImages, ImageRef, ImageService,
    ImageStore, PodSandboxConfig,
};

use crate::dev_cluster::DevCluster;
use crate::figures::{ms, percentile};
use crate::memory::rss_bytes;
use crate::{guest_path, tempfile_dir, RunOpts};

#[derive(Args, Debug)]
pub struct BenchDeployArgs {
    /// Replicas of the benchmark Deployment.
    #[arg(long, default_value_t = 100)]
    pub replicas: usize,
    #[command(flatten)]
    pub run: RunOpts,
}

/// Longest wait for the deployment to run.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn deploy(args: BenchDeployArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.run.guest)?;
    let tmp = tempfile_dir(args.run.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    println!(
        "skiff bench deploy: {} replicas of {}",
        args.replicas,
        guest.display()
    );

    let (cold, warm_memory, warm_disk) =
        compile_cache_figures(&guest, &dir.join("cache-bench")).await?;
    println!(
        "pod start, cold compile cache (compile + instantiate): {}",
        ms(cold)
    );
    println!(
        "pod start, warm cache in memory:                       {}",
        ms(warm_memory)
    );
    println!(
        "pod start, warm cache on disk (after agent restart):    {}",
        ms(warm_disk)
    );

    // Room for the single pods too, which may still be terminating.
    let pods = args.replicas + 10 + SINGLE_PODS + 1;
    let cluster = DevCluster::start(&dir, guest_dir(&guest), pods as u32).await?;
    let client = cluster.client.clone();

    let single = single_pods(&client, &guest, SINGLE_PODS).await?;
    println!(
        "one pod create -> Running on the idle warm node ({SINGLE_PODS} pods, one at a time): p50 {}, max {}",
        ms(percentile(&single, 50)),
        ms(percentile(&single, 100))
    );

    let rss_before = rss_bytes();
    let revision_before = store_revision(&client).await?;
    let times = run_deployment(&client, &guest, args.replicas).await?;
    let writes = store_revision(&client)
        .await?
        .saturating_sub(revision_before);
    let between = |from: &Times, to: &Times| {
        let mut spans: Vec<Duration> = to
            .iter()
            .filter_map(|(pod, at)| {
                from.get(pod)
                    .map(|start| at.saturating_duration_since(*start))
            })
            .collect();
        spans.sort();
        format!(
            "p50 {}, p99 {}",
            ms(percentile(&spans, 50)),
            ms(percentile(&spans, 99))
        )
    };
    println!(
        "apply of a {}-replica Deployment until all Running:   {}",
        args.replicas,
        ms(times.total)
    );
    println!(
        "pipeline: {:.0} pods/s (all created after {}, all scheduled after {})",
        args.replicas as f64 / times.total.as_secs_f64(),
        ms(last(&times.added, times.started)),
        ms(last(&times.scheduled, times.started))
    );
    println!(
        "store writes until all Running: {writes} ({:.1} per pod, {:.0}/s)",
        writes as f64 / args.replicas.max(1) as f64,
        writes as f64 / times.total.as_secs_f64()
    );
    println!(
        "per pod create -> Running:    {}",
        between(&times.added, &times.running)
    );
    println!(
        "per pod create -> scheduled:  {}",
        between(&times.added, &times.scheduled)
    );
    println!(
        "per pod scheduled -> Running: {}",
        between(&times.scheduled, &times.running)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_bytes();
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let per_pod = after.saturating_sub(before) / args.replicas.max(1) as u64;
        println!(
            "memory per idle Wasm pod (process RSS growth / pods, includes the pod's API objects): {} KiB (RSS {} -> {} MiB)",
            per_pod / 1024,
            before >> 20,
            after >> 20
        );
    }
    cluster.shutdown().await;
    Ok(())
}

/// The directory the agent must allow `file:` images from to run `guest`.
pub fn guest_dir(guest: &Path) -> &Path {
    guest.parent().unwrap_or(guest)
}

/// Time to a Running container: compiling, from memory, and from the disk cache of a new runtime.
async fn compile_cache_figures(
    guest: &Path,
    dir: &Path,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let files = FileImages::default().allow_dir(guest_dir(guest))?;
    let images = ImageStore::open(dir.join("images"))?.with_file_images(files);
    let first = WasmRuntime::new(dir.to_path_buf())?;
    let cold = start_one(&first, &images, guest, "cold").await?;
    let warm_memory = start_one(&first, &images, guest, "warm").await?;
    drop(first);
    let second = WasmRuntime::new(dir.to_path_buf())?;
    let warm_disk = start_one(&second, &images, guest, "disk").await?;
    Ok((cold, warm_memory, warm_disk))
}

async fn start_one(
    runtime: &WasmRuntime,
    images: &ImageStore,
    guest: &Path,
    name: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let image = images
        .pull_image(&format!("file:{}", guest.display()), None)
        .await?;
    run_to_running(runtime, image, name).await?;
    Ok(started.elapsed())
}

/// Runs `image` in a new sandbox `name` until its container is Running, then removes it.
pub(crate) async fn run_to_running(
    runtime: &WasmRuntime,
    image: ImageRef,
    name: &str,
) -> anyhow::Result<()> {
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            network: None,
            uid: name.into(),
            namespace: "bench".into(),
            name: name.into(),
            labels: Default::default(),
            log_directory: std::env::temp_dir()
                .join(format!("skiff-bench-{}-{name}", std::process::id())),
            hostname: String::new(),
            dns: None,
        })
        .await?;
    let config = ContainerConfig::new("c", image);
    let id = runtime.create_container(&sandbox, &config).await?;
    runtime.start_container(&id).await?;
    while !matches!(
        runtime.container_status(&id).await?.state,
        ContainerState::Running { .. }
    ) {
        tokio::task::yield_now().await;
    }
    runtime.remove_pod_sandbox(&sandbox).await?;
    Ok(())
}

type Times = HashMap<String, Instant>;

/// When each pod was first seen, bound to the node and Running; when the Deployment was
/// created and the total time.
struct DeploymentTimes {
    added: Times,
    scheduled: Times,
    running: Times,
    started: Instant,
    total: Duration,
}

/// How long after `started` the last of `times` came.
fn last(times: &Times, started: Instant) -> Duration {
    times
        .values()
        .max()
        .map_or(Duration::ZERO, |at| at.saturating_duration_since(started))
}

/// The store's revision now (every write advances it), from an empty list's resourceVersion.
async fn store_revision(client: &Client) -> anyhow::Result<u64> {
    let namespaces = resources::by_name("namespaces").context("namespaces")?;
    let params = ListParams {
        label_selector: Some("skiff-bench=none".into()),
        field_selector: None,
    };
    let list = client.list(namespaces, None, &params).await?;
    let version = list["metadata"]["resourceVersion"].as_str().unwrap_or("0");
    version
        .parse()
        .with_context(|| format!("resourceVersion {version:?} is not a revision"))
}

/// Bare pods created one at a time for the single-pod figure (after one to warm the node).
const SINGLE_PODS: usize = 10;

/// Creates `count` bare pods of `guest` one after another, each deleted once Running; returns
/// each one's create -> Running time, sorted. One pod before them warms the node's compile
/// cache and is not counted.
async fn single_pods(client: &Client, guest: &Path, count: usize) -> anyhow::Result<Vec<Duration>> {
    let pods = resources::by_name("pods").context("pods")?;
    let mut spans = Vec::with_capacity(count);
    for i in 0..=count {
        let name = format!("single-{i}");
        let params = ListParams {
            label_selector: None,
            field_selector: Some(format!("metadata.name={name}")),
        };
        let mut events = watch_from_now(client, &params).await?;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "guest", "image": format!("file:{}", guest.display())}]}
        });
        let started = Instant::now();
        client.create(pods, Some("default"), &pod).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let event = tokio::time::timeout_at(deadline, events.next())
                .await
                .with_context(|| format!("pod {name} not Running within 30 s"))?;
            let Some(event) = event else {
                bail!("the watch of pod {name} ended early")
            };
            if event?.object["status"]["phase"] == "Running" {
                break;
            }
        }
        if i > 0 {
            spans.push(started.elapsed());
        }
        client
            .delete(pods, Some("default"), &name, &Default::default())
            .await?;
    }
    spans.sort();
    Ok(spans)
}

/// A watch of the default namespace's pods matching `params`, from the current revision on.
async fn watch_from_now(client: &Client, params: &ListParams) -> anyhow::Result<WatchStream> {
    let pods = resources::by_name("pods").context("pods")?;
    let list = client.list(pods, Some("default"), params).await?;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    Ok(client.watch(pods, Some("default"), params, version).await?)
}

/// Creates the Deployment and watches its pods.
async fn run_deployment(
    client: &Client,
    guest: &Path,
    replicas: usize,
) -> anyhow::Result<DeploymentTimes> {
    let deployments = resources::by_name("deployments").context("deployments")?;
    let params = ListParams {
        label_selector: Some("app=bench".into()),
        field_selector: None,
    };
    let mut events = watch_from_now(client, &params).await?;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {"containers": [{
                "name": "guest", "image": format!("file:{}", guest.display()),
                "env": [{"name": "MESSAGE", "value": "bench"}]
            }]}}
        }
    });
    let started = Instant::now();
    client
        .create(deployments, Some("default"), &deployment)
        .await?;
    let (mut added, mut scheduled, mut running) = (Times::new(), Times::new(), Times::new());
    let deadline = tokio::time::Instant::now() + DEPLOY_TIMEOUT;
    while running.len() < replicas {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .with_context(|| {
                format!(
                    "only {} of {replicas} pods ran within {DEPLOY_TIMEOUT:?}",
                    running.len()
                )
            })?;
        let Some(event) = event else {
            bail!("the pod watch ended early")
        };
        let event = event?;
        let now = Instant::now();
        let name = event.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        added.entry(name.clone()).or_insert(now);
        if event.object["spec"]["nodeName"].is_string() {
            scheduled.entry(name.clone()).or_insert(now);
        }
        if event.object["status"]["phase"] == "Running" {
            running.entry(name).or_insert(now);
        }
    }
    Ok(DeploymentTimes {
        added,
        scheduled,
        running,
        started,
        total: started.elapsed(),
    })
}
