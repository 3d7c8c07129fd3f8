//! `skiff bench node-loss`: how long after `kill -9` of a real agent its pods run elsewhere.
//! A `skiff server` and N `skiff agent` processes (the real Wasm runtime) run on loopback; a
//! Deployment of the ticker guest spreads over them; the agent holding the most pods is killed
//! and the clock runs until every replica is Running on the other nodes.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use skiff_client::{Client, ListParams};

use crate::cluster::{join_token, kind, wait_nodes_ready};
use crate::server::{wait_ready, ServerUnderTest};
use crate::{guest_path, tempfile_dir, RunOpts};

#[derive(Args, Debug)]
pub struct BenchNodeLossArgs {
    /// Agent processes to start (real Wasm runtime).
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// Replicas of the ticker Deployment.
    #[arg(long, default_value_t = 30)]
    pub replicas: usize,
    /// The started server's `--node-grace-seconds`; the agents' node Lease lasts as long
    /// (`--node-lease-duration-seconds`, renewed every quarter of it).
    #[arg(long, default_value_t = 6)]
    pub node_grace_seconds: u64,
    #[command(flatten)]
    pub run: RunOpts,
}

/// Longest wait for any phase of the run.
const PHASE_TIMEOUT: Duration = Duration::from_secs(180);

/// Agent processes, killed when dropped.
struct Agents(Vec<(String, Child)>);

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn node_loss(args: BenchNodeLossArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.run.guest)?;
    let tmp = tempfile_dir(args.run.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    let mut server = ServerUnderTest::spawn(&dir.join("server"), args.node_grace_seconds).await?;
    let url = server.url();
    let client = server.client()?;
    wait_ready(&client, &mut server).await?;
    let token = join_token(&client).await?;
    // As `skiff token create` prints it: with the CA's hash, which the agents check.
    let token = match client.cluster_ca().await? {
        Some(ca) => {
            skiff_api::join_token::with_ca_hash(&token, &skiff_control_plane::pki::ca_hash(&ca))
        }
        None => token.to_string(),
    };
    let mut agents = Agents(Vec::new());
    for i in 0..args.agents {
        let name = format!("real-{i}");
        let data = dir.join(&name);
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(data.with_extension("log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["agent", "--server", &url, "--token", &token])
            .args(["--pod-network", "host"])
            .arg("--node-lease-duration-seconds")
            .arg(args.node_grace_seconds.to_string())
            .arg("--allow-image-dir")
            .arg(guest.parent().unwrap_or(&guest))
            .args([
                "--node-name",
                &name,
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff agent")?;
        agents.0.push((name, child));
    }
    wait_nodes_ready(&client, args.agents, PHASE_TIMEOUT).await?;
    println!(
        "skiff bench node-loss: {} agents (real Wasm runtime), {} replicas, --node-grace-seconds {}",
        args.agents, args.replicas, args.node_grace_seconds
    );

    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "node-loss"},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": {"app": "node-loss"}},
            "template": {"metadata": {"labels": {"app": "node-loss"}}, "spec": {"containers": [{
                "name": "ticker", "image": format!("file:{}", guest.display()),
                "env": [{"name": "MESSAGE", "value": "bench"}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}
            }]}}
        }
    });
    client
        .create(kind("deployments")?, Some("default"), &deployment)
        .await?;
    let placed = wait_running(&client, args.replicas, None).await?;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for node in placed.values() {
        *per_node.entry(node.clone()).or_default() += 1;
    }
    let (victim, lost) = per_node
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .context("no pods placed")?;

    let killed_at = Instant::now();
    if let Some((_, child)) = agents.0.iter_mut().find(|(n, _)| *n == victim) {
        child.kill().context("kill -9")?;
        child.wait()?;
    }
    let not_ready = wait_not_ready(&client, &victim).await?;
    println!(
        "kill -9 of {victim} (running {lost} pods): NotReady after {:.1} s",
        not_ready.as_secs_f64()
    );
    wait_running(&client, args.replicas, Some(&victim)).await?;
    println!(
        "all {} replicas Running on the other nodes {:.1} s after kill -9 (Nomad: ~20 s by default, Kubernetes: ~6 min by default)",
        args.replicas,
        killed_at.elapsed().as_secs_f64()
    );
    drop(agents);
    server.stop();
    Ok(())
}

/// Waits until `count` pods of the Deployment are Running, none of them on `avoid`; returns
/// pod name → node.
async fn wait_running(
    client: &Client,
    count: usize,
    avoid: Option<&str>,
) -> anyhow::Result<HashMap<String, String>> {
    let params = ListParams {
        label_selector: Some("app=node-loss".into()),
        field_selector: None,
    };
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        let list = client.list(kind("pods")?, Some("default"), &params).await?;
        let running: HashMap<String, String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["status"]["phase"] == "Running"
                    && p["metadata"]["deletionTimestamp"].is_null()
                    && avoid.is_none_or(|n| p["spec"]["nodeName"] != n)
            })
            .map(|p| (text(&p["metadata"]["name"]), text(&p["spec"]["nodeName"])))
            .collect();
        if running.len() >= count {
            return Ok(running);
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} pods Running after {PHASE_TIMEOUT:?}",
                running.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_not_ready(client: &Client, node: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let node_obj = client.get(kind("nodes")?, None, node).await?;
        let ready = node_obj["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .map(|c| text(&c["status"]));
        if ready.as_deref() != Some("True") {
            return Ok(started.elapsed());
        }
        if started.elapsed() > PHASE_TIMEOUT {
            bail!("{node} still Ready after {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}
