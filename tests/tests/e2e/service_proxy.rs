//! The node proxy through the real binary: a control plane and two agents in `--pod-network
//! bridge` mode (so `--proxy userspace` by default), each on a host of its own (network
//! namespaces on a bridge). The http-echo Deployment runs replicas on both nodes behind a
//! NodePort Service; from each node's host curl reaches every replica through the ClusterIP,
//! so does a pod from its own namespace, and from the control plane's host (no proxy there)
//! every replica answers through each node's NodePort. A replica deleted under a steady client
//! loses it no request. Scaled to zero, the Service refuses connections at once. Needs root,
//! curl and the built guests (scripts/build-guests.sh).

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use skiff_e2e::{start_agents_on, start_server_on, wait_until, wasip2_guests, Network, Skiff};

const WAIT: Duration = Duration::from_secs(60);
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_B: usize = 2;
const REPLICAS: usize = 4;
const NODE_PORT: u16 = 30080;
/// curl's exit code for "failed to connect" (refused).
const CURL_COULD_NOT_CONNECT: i32 = 7;

fn manifests(guest: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: http-echo}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: http-echo}}}}
  template:
    metadata: {{labels: {{app: http-echo}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: http-echo
        image: "file:{guest}"
        ports: [{{name: http, containerPort: 8080}}]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: http-echo}}
spec:
  type: NodePort
  selector: {{app: http-echo}}
  ports:
  - {{name: http, port: 80, targetPort: http, nodePort: {NODE_PORT}}}
"#
    )
}

/// `curl` of `url` from `host`'s namespace: its exit code and output.
fn curl(network: &Network, host: usize, url: &str) -> anyhow::Result<(i32, String)> {
    let out = Command::new("ip")
        .args(["netns", "exec", &network.namespace(host)])
        .args(["curl", "-sS", "--max-time", "5", url])
        .output()
        .context("running curl (apt-get install curl)")?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

/// `curl` of `url` from network namespace `netns` (a path): its exit code and output.
fn curl_in(netns: &str, url: &str) -> anyhow::Result<(i32, String)> {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["curl", "-sS", "--max-time", "5", url])
        .output()
        .context("running nsenter curl")?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

/// A pod network namespace process `pid` (an agent) holds open, as a path.
fn a_pod_namespace(pid: u32) -> anyhow::Result<String> {
    let own = std::fs::read_link(format!("/proc/{pid}/ns/net"))?;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let path = fd?.path();
        let Ok(target) = std::fs::read_link(&path) else {
            continue;
        };
        if target.to_string_lossy().starts_with("net:[") && target != own {
            return Ok(path.display().to_string());
        }
    }
    anyhow::bail!("agent {pid} holds no pod namespace")
}

/// The pod named in an http-echo answer (`pod NAME: GET /`).
fn pod_of(answer: &str) -> Option<String> {
    let rest = answer.strip_prefix("pod ")?;
    Some(rest.split(':').next()?.to_string())
}

/// Asks `url` from `host` until every pod of `pods` has answered.
fn reaches_every_replica(
    network: &Network,
    host: usize,
    url: &str,
    pods: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    wait_until(
        &format!("{url} from host {host} to reach {pods:?}"),
        WAIT,
        || {
            let (code, answer) = curl(network, host, url)?;
            if code == 0 {
                seen.extend(pod_of(&answer));
            }
            Ok((&seen == pods).then_some(()))
        },
    )
}

fn running_pods(cli: &Skiff) -> anyhow::Result<BTreeSet<String>> {
    let pods = cli.items(&["get", "pods", "-l", "app=http-echo"])?;
    Ok(pods
        .iter()
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

#[test]
fn services_reach_every_replica_by_cluster_ip_and_node_port() -> anyhow::Result<()> {
    let release = wasip2_guests(&["http_echo.wasm"])?;
    let guest = release.join("http_echo.wasm");
    let tmp = tempfile::tempdir()?;
    let network = Network::create(3)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let release = release.display().to_string();
    let agent_flags = ["--allow-image-dir", &release, "--pod-network", "bridge"];
    let mut agents = start_agents_on(
        &network,
        &[(HOST_A, "a"), (HOST_B, "b")],
        &url,
        tmp.path(),
        &agent_flags,
    )?;

    // Both nodes first, so the replicas spread over them.
    cli.wait_nodes_ready(2, WAIT)?;
    cli.apply_yaml(&manifests(&guest.display().to_string()))?;
    let mut last = String::new();
    let pods = wait_until("every replica to be ready on both nodes", WAIT, || {
        for agent in &mut agents {
            agent.check_running()?;
        }
        let pods = cli.items(&["get", "pods", "-l", "app=http-echo"])?;
        let nodes: BTreeSet<&str> = pods
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str())
            .collect();
        let ready = running_pods(&cli)?;
        last = cli.ok(&["get", "pods", "-o", "wide"])?;
        Ok((ready.len() == REPLICAS && nodes.len() == 2).then_some(ready))
    })
    .with_context(|| last.clone())?;
    let service = cli.json(&["get", "service", "http-echo"])?;
    let cluster_ip = service["spec"]["clusterIP"]
        .as_str()
        .context("a ClusterIP")?
        .to_string();

    for host in [HOST_A, HOST_B] {
        reaches_every_replica(&network, host, &format!("http://{cluster_ip}/"), &pods)?;
    }
    // From inside a pod, through its default route to its node.
    let netns = a_pod_namespace(agents[1].pid().context("agent b's pid")?)?;
    let mut seen = BTreeSet::new();
    wait_until(
        "a pod on b to reach every replica by ClusterIP",
        WAIT,
        || {
            let (code, answer) = curl_in(&netns, &format!("http://{cluster_ip}/"))?;
            if code == 0 {
                seen.extend(pod_of(&answer));
            }
            Ok((seen == pods).then_some(()))
        },
    )?;
    for host in [HOST_A, HOST_B] {
        let node_port = format!("http://{}:{NODE_PORT}/", network.address(host));
        reaches_every_replica(&network, SERVER, &node_port, &pods)?;
    }

    // A pod deleted under a steady client: the client loses no request.
    let victim = pods.iter().next().context("a pod")?.clone();
    let stop = AtomicBool::new(false);
    let (asked, failed) = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let (mut asked, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (code, answer) = curl(&network, HOST_A, &format!("http://{cluster_ip}/"))?;
                asked += 1;
                if code != 0 {
                    failed.push(answer);
                }
            }
            anyhow::Ok((asked, failed))
        });
        let replaced = (|| {
            cli.ok(&["delete", "pod", &victim])?;
            wait_until("the deleted replica to be replaced", WAIT, || {
                let ready = running_pods(&cli)?;
                Ok((ready.len() == REPLICAS && !ready.contains(&victim)).then_some(()))
            })
        })();
        stop.store(true, Ordering::Relaxed);
        let counts = client.join().expect("the client thread");
        replaced.and(counts)
    })?;
    eprintln!("{asked} requests while {victim} was replaced");
    assert!(asked > 0);
    assert!(
        failed.is_empty(),
        "{} of {asked} failed: {failed:?}",
        failed.len()
    );

    // No ready endpoint: refused at once, never a hang.
    cli.ok(&["scale", "deployment", "http-echo", "--replicas", "0"])?;
    let cluster_url = format!("http://{cluster_ip}/");
    wait_until("the scaled-down Service to refuse", WAIT, || {
        let started = Instant::now();
        let (code, _) = curl(&network, HOST_A, &cluster_url)?;
        Ok((code == CURL_COULD_NOT_CONNECT).then_some(started.elapsed()))
    })
    .and_then(|took| {
        anyhow::ensure!(took < Duration::from_secs(2), "refusing took {took:?}");
        Ok(())
    })?;
    // Each node's proxy drops the endpoints on its own: b's NodePort closes soon after.
    let node_port = format!("http://{}:{NODE_PORT}/", network.address(HOST_B));
    wait_until("b's NodePort to refuse", WAIT, || {
        let (code, _) = curl(&network, SERVER, &node_port)?;
        Ok((code == CURL_COULD_NOT_CONNECT).then_some(()))
    })?;
    Ok(())
}
