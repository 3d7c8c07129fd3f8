//! Zero-drop changes behind a Service, counted: a control plane and two agents in `--pod-network
//! bridge` mode (each on a host of its own, as in service_proxy.rs) run the http-echo
//! Deployment the way Kubernetes users run one for zero-drop rollouts (a readiness probe, and
//! a `preStop` sleep so that a deleted pod serves until every node proxy has dropped its
//! endpoint). A steady client asks the ClusterIP from one host, one request after another,
//! while the Deployment is (a) scaled down, (b) has a pod deleted and (c) is restarted with
//! `rollout restart`; once readiness has settled after each, every request must have had a
//! 200. Needs root, curl and the built guests (scripts/build-guests.sh).

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use skiff_e2e::{start_agents_on, start_server_on, wait_until, wasip2_guests, Network, Skiff};

/// Bound of each wait; the whole test stays within a few of these.
const WAIT: Duration = Duration::from_secs(90);
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_B: usize = 2;

fn manifests(guest: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: http-echo}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: http-echo}}}}
  template:
    metadata: {{labels: {{app: http-echo}}}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: http-echo
        image: "file:{guest}"
        ports: [{{name: http, containerPort: 8080}}]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        readinessProbe:
          httpGet: {{port: http, path: /}}
          periodSeconds: 1
        lifecycle:
          preStop:
            sleep: {{seconds: 2}}
---
apiVersion: v1
kind: Service
metadata: {{name: http-echo}}
spec:
  selector: {{app: http-echo}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"#
    )
}

/// One request with `curl` from `host`'s namespace: the HTTP status (0 when none came) and
/// what curl said.
fn get(network: &Network, host: usize, url: &str) -> anyhow::Result<(u16, String)> {
    let out = Command::new("ip")
        .args(["netns", "exec", &network.namespace(host)])
        .args([
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .context("running curl (apt-get install curl)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status = stdout
        .rsplit('\n')
        .next()
        .and_then(|code| code.trim().parse().ok())
        .unwrap_or(0);
    let said = stdout.to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok((status, said))
}

/// The http-echo pods: all of them, and the ready ones not being deleted.
fn pods(cli: &Skiff) -> anyhow::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let pods = cli.items(&["get", "pods", "-l", "app=http-echo"])?;
    let name = |p: &serde_json::Value| p["metadata"]["name"].as_str().map(str::to_string);
    let all = pods.iter().filter_map(name).collect();
    let ready = pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(name)
        .collect();
    Ok((all, ready))
}

/// Waits until exactly `replicas` pods exist, all ready and none of `gone`; their names.
fn settled(
    cli: &Skiff,
    replicas: usize,
    gone: &BTreeSet<String>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut last = String::new();
    wait_until(&format!("{replicas} ready replicas"), WAIT, || {
        let (all, ready) = pods(cli)?;
        last = format!("{all:?}, ready {ready:?}");
        Ok((all.len() == replicas && ready == all && ready.is_disjoint(gone)).then_some(ready))
    })
    .with_context(|| last.clone())
}

/// Runs `change` under a steady client of `url` from HOST_A: the requests asked and the
/// failed ones (what curl said).
fn under_load(
    network: &Network,
    url: &str,
    change: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<(u32, Vec<String>)> {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let counts = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let (mut asked, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, said) = get(network, HOST_A, url)?;
                asked += 1;
                if status != 200 {
                    failed.push(said);
                }
            }
            anyhow::Ok((asked, failed))
        });
        let changed = change();
        stop.store(true, Ordering::Relaxed);
        let counts = client.join().expect("the client thread");
        changed.and(counts)
    });
    eprintln!("  (took {:?})", started.elapsed());
    counts
}

#[test]
fn scaling_deleting_and_restarting_behind_a_service_drop_no_request() -> anyhow::Result<()> {
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
    cli.wait_nodes_ready(2, WAIT)?;
    cli.apply_yaml(&manifests(&guest.display().to_string()))?;
    let first = settled(&cli, 4, &BTreeSet::new())?;
    let service = cli.json(&["get", "service", "http-echo"])?;
    let cluster_ip = service["spec"]["clusterIP"]
        .as_str()
        .context("a ClusterIP")?;
    let url = format!("http://{cluster_ip}/");
    // Readiness settled: the proxy on A sends to every replica.
    let mut seen = BTreeSet::new();
    wait_until("the ClusterIP to reach every replica", WAIT, || {
        let (status, said) = get(&network, HOST_A, &url)?;
        if status == 200 {
            seen.extend(
                said.strip_prefix("pod ")
                    .and_then(|r| r.split(':').next())
                    .map(str::to_string),
            );
        }
        Ok((seen == first).then_some(()))
    })?;

    let mut totals = Vec::new();
    let mut check = |phase: &str, (asked, failed): (u32, Vec<String>)| {
        eprintln!("{phase}: {asked} requests, {} failed", failed.len());
        totals.push((phase.to_string(), asked, failed));
    };

    let counts = under_load(&network, &url, || {
        cli.ok(&["scale", "deployment", "http-echo", "--replicas", "2"])?;
        settled(&cli, 2, &BTreeSet::new()).map(drop)
    })?;
    check("scale 4 -> 2", counts);

    let (_, before) = pods(&cli)?;
    let victim = before.iter().next().context("a pod")?.clone();
    let counts = under_load(&network, &url, || {
        cli.ok(&["delete", "pod", &victim])?;
        settled(&cli, 2, &BTreeSet::from([victim.clone()])).map(drop)
    })?;
    check(&format!("delete pod {victim}"), counts);

    let (_, before) = pods(&cli)?;
    let counts = under_load(&network, &url, || {
        cli.ok(&["rollout", "restart", "deployment/http-echo"])?;
        settled(&cli, 2, &before).map(drop)
    })?;
    check("rollout restart", counts);

    for agent in &mut agents {
        agent.check_running()?;
    }
    for (phase, asked, failed) in &totals {
        assert!(*asked > 0, "{phase}: no request was made");
        assert!(
            failed.is_empty(),
            "{phase}: {} of {asked} requests failed: {failed:?}",
            failed.len()
        );
    }
    Ok(())
}
