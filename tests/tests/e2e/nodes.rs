//! Several nodes: a control plane and agents as separate processes on loopback.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{
    example, repo_root, start_agent, start_with_agent_flags, start_with_agents, wait_until,
    DevServer,
};

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Running, not terminating, pods of the ticker, with their nodes.
fn running_on(cli: &skiff_e2e::Skiff) -> anyhow::Result<Vec<(String, String)>> {
    Ok(items(&cli.json(&["get", "pods", "-l", "app=ticker"])?)
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .map(|p| {
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (
                name,
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

#[test]
fn pods_of_a_lost_node_move_and_never_run_twice() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, mut agents) = start_with_agent_flags(
        tmp.path(),
        &["--node-grace-seconds", "3"],
        // A Lease renewed every second, well within the short grace.
        &["--node-lease-duration-seconds", "4"],
        &["node-a", "node-b", "node-c"],
    )?;
    let cli = server.cli();
    let a = &mut agents[0];

    cli.ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    cli.ok(&["scale", "deployment", "ticker", "--replicas", "6"])?;
    let placed = wait_until(
        "6 ticker pods spread over the nodes",
        Duration::from_secs(60),
        || {
            let running = running_on(&cli)?;
            let on_a = running.iter().filter(|(_, n)| n == "node-a").count();
            Ok((running.len() == 6 && on_a > 0 && on_a < 6).then_some(running))
        },
    )?;
    let lost: Vec<String> = placed
        .iter()
        .filter(|(_, n)| n == "node-a")
        .map(|(p, _)| p.clone())
        .collect();

    // kill -9 node-a's agent: after the grace, its pods are replaced on the other nodes.
    a.kill9()?;
    wait_until("replacements elsewhere", Duration::from_secs(30), || {
        let running = running_on(&cli)?;
        Ok((running.len() == 6 && running.iter().all(|(_, n)| n != "node-a")).then_some(()))
    })?;
    assert!(
        cli.ok(&["get", "nodes"])?.contains("NotReady"),
        "node-a is shown NotReady"
    );

    // node-a comes back: it finishes deleting its old pods, and none of them runs again.
    a.restart()?;
    wait_until(
        "node-a's old pods to be gone",
        Duration::from_secs(30),
        || {
            let names: Vec<String> = items(&cli.json(&["get", "pods", "-l", "app=ticker"])?)
                .iter()
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
                .collect();
            Ok(lost.iter().all(|p| !names.contains(p)).then_some(()))
        },
    )?;
    wait_until("node-a Ready again", Duration::from_secs(30), || {
        Ok((cli.ok(&["get", "nodes"])?.matches(" Ready ").count() == 3).then_some(()))
    })?;
    let running = running_on(&cli)?;
    assert_eq!(running.len(), 6, "still exactly 6 ticker pods: {running:?}");
    let mut names: Vec<&String> = running.iter().map(|(p, _)| p).collect();
    names.dedup();
    assert_eq!(names.len(), 6, "no pod runs twice");
    Ok(())
}

#[test]
fn drain_moves_pods_and_keeps_the_node_cordoned() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, _agents) = start_with_agents(tmp.path(), &[], &["node-a", "node-b"])?;
    let cli = server.cli();
    cli.ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    cli.ok(&["scale", "deployment", "ticker", "--replicas", "4"])?;
    wait_until("pods on both nodes", Duration::from_secs(60), || {
        let running = running_on(&cli)?;
        let on_a = running.iter().filter(|(_, n)| n == "node-a").count();
        Ok((running.len() == 4 && on_a > 0).then_some(()))
    })?;

    let out = cli.ok(&["drain", "node-a", "--grace-period", "5"])?;
    assert!(out.contains("node/node-a drained"), "{out}");
    let left = cli.json(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node-a",
    ])?;
    assert!(items(&left).is_empty(), "pods left on node-a: {left}");
    wait_until("4 pods on node-b", Duration::from_secs(60), || {
        let running = running_on(&cli)?;
        Ok((running.len() == 4 && running.iter().all(|(_, n)| n == "node-b")).then_some(()))
    })?;
    assert!(
        cli.ok(&["get", "nodes"])?.contains("SchedulingDisabled"),
        "node-a stays cordoned"
    );
    Ok(())
}

/// Nodes of the running, not terminating, pods with `label`.
fn nodes_running(cli: &skiff_e2e::Skiff, label: &str) -> anyhow::Result<Vec<String>> {
    let mut nodes: Vec<String> = items(&cli.json(&["get", "pods", "-l", label])?)
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .collect();
    nodes.sort();
    Ok(nodes)
}

#[test]
fn daemonsets_follow_nodes_and_tokens_guard_joining() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let cli = server.cli();

    // Printed tokens carry the CA's hash (`K10<hash>::<id>.<secret>`).
    let token = server.join_token()?;
    let (ca_hash, plain) = token
        .split_once("::")
        .expect("a K10<hash>::<token> join token");
    // A token naming another CA is refused before anything is sent with it.
    let forged_ca = cli.run(&[
        "agent",
        "--token",
        &format!("K10{}::{plain}", "0".repeat(64)),
        "--node-name",
        "intruder",
        "--data-dir",
        &tmp.path().join("intruder").display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ])?;
    assert!(
        !forged_ca.success,
        "an agent must refuse a CA its token does not name"
    );
    assert!(
        forged_ca.stderr.contains("not the join token's"),
        "{}",
        forged_ca.stderr
    );
    // A wrong token is refused at once, with a message that says so.
    let refused = cli.run(&[
        "agent",
        "--token",
        &format!("{ca_hash}::abcdef.0123456789abcdef"),
        "--node-name",
        "intruder",
        "--data-dir",
        &tmp.path().join("intruder").display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ])?;
    assert!(!refused.success, "an agent with a wrong token must fail");
    assert!(
        refused.stderr.contains("wrong join token"),
        "{}",
        refused.stderr
    );

    assert!(
        cli.ok(&["token", "list"])?.contains(&plain[..6]),
        "the token is listed by id"
    );
    let agent = |name: &str, extra: &[&str]| {
        start_agent(&server.url(), &token, name, &tmp.path().join(name), extra)
    };
    let _a = agent("node-a", &[])?;
    let _b = agent("node-b", &["--node-label", "disk=ssd"])?;
    wait_until("two nodes Ready", Duration::from_secs(30), || {
        Ok((cli.ok(&["get", "nodes"])?.matches(" Ready ").count() == 2).then_some(()))
    })?;
    let manifest = repo_root().join("wasm-examples/ticker/daemonset.yaml");
    cli.ok(&["apply", "-f", manifest.to_str().expect("utf-8")])?;
    wait_until("one pod per node", Duration::from_secs(60), || {
        Ok((nodes_running(&cli, "app=node-ticker")? == ["node-a", "node-b"]).then_some(()))
    })?;

    // A node that joins gets its pod; a node that is removed loses it.
    let mut c = agent("node-c", &[])?;
    wait_until("a pod on the new node", Duration::from_secs(60), || {
        Ok(
            (nodes_running(&cli, "app=node-ticker")? == ["node-a", "node-b", "node-c"])
                .then_some(()),
        )
    })?;
    let ds = cli.ok(&["get", "daemonsets"])?;
    assert!(
        ds.contains("node-ticker") && ds.split_whitespace().filter(|w| *w == "3").count() >= 3,
        "{ds}"
    );
    c.terminate()?;
    cli.ok(&["delete", "node", "node-c"])?;
    wait_until(
        "the removed node's pod gone",
        Duration::from_secs(60),
        || {
            let pods = items(&cli.json(&["get", "pods", "-l", "app=node-ticker"])?);
            let on_c = pods.iter().any(|p| p["spec"]["nodeName"] == "node-c");
            Ok((!on_c && pods.len() == 2).then_some(()))
        },
    )?;

    // Required node affinity and pod anti-affinity through the real scheduler.
    let constrained = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: ssd-only}
spec:
  replicas: 2
  selector: {matchLabels: {app: ssd-only}}
  template:
    metadata: {labels: {app: ssd-only}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: disk, operator: In, values: [ssd]}]
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: ssd-only}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: ticker
        image: file:IMAGE
"#
    .replace(
        "IMAGE",
        &repo_root()
            .join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm")
            .display()
            .to_string(),
    );
    let out = cli.run_with_stdin(&["apply", "-f", "-"], Some(&constrained))?;
    assert!(out.success, "{}", out.stderr);
    wait_until(
        "one pod on the ssd node, one unschedulable",
        Duration::from_secs(60),
        || {
            let pods = items(&cli.json(&["get", "pods", "-l", "app=ssd-only"])?);
            let on_b = pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == "node-b")
                .count();
            let pending = pods.iter().find(|p| p["spec"]["nodeName"].is_null());
            let message = pending
                .and_then(|p| p["status"]["conditions"].as_array().cloned())
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "PodScheduled")
                .and_then(|c| c["message"].as_str().map(str::to_string))
                .unwrap_or_default();
            Ok((on_b == 1 && pods.len() == 2)
                .then_some(message)
                .filter(|m| {
                    m.contains("1 node(s) didn't match Pod's node affinity/selector")
                        && m.contains("1 node(s) didn't match pod anti-affinity rules")
                }))
        },
    )?;
    Ok(())
}
