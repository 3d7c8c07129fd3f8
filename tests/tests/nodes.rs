//! Several nodes: a control plane and two agents as separate processes on loopback.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{example, start_agent, wait_until, DevServer};

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
    let server = DevServer::start_with(
        &tmp.path().join("server"),
        false,
        &["--node-grace-seconds", "3"],
    )?;
    let cli = server.cli();
    let mut a = start_agent(&server.url(), "node-a", &tmp.path().join("a"))?;
    let _b = start_agent(&server.url(), "node-b", &tmp.path().join("b"))?;
    wait_until("both nodes Ready", Duration::from_secs(30), || {
        a.check_running()?;
        let table = cli.ok(&["get", "nodes"])?;
        Ok((table.matches(" Ready ").count() == 2).then_some(()))
    })?;

    cli.ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    cli.ok(&["scale", "deployment", "ticker", "--replicas", "4"])?;
    let placed = wait_until(
        "4 ticker pods on both nodes",
        Duration::from_secs(60),
        || {
            let running = running_on(&cli)?;
            let on_a = running.iter().filter(|(_, n)| n == "node-a").count();
            Ok((running.len() == 4 && on_a > 0 && on_a < 4).then_some(running))
        },
    )?;
    let lost: Vec<String> = placed
        .iter()
        .filter(|(_, n)| n == "node-a")
        .map(|(p, _)| p.clone())
        .collect();

    // kill -9 node-a's agent: after the grace, its pods are replaced on node-b.
    a.kill9()?;
    wait_until("replacements on node-b", Duration::from_secs(30), || {
        let running = running_on(&cli)?;
        Ok((running.len() == 4 && running.iter().all(|(_, n)| n == "node-b")).then_some(()))
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
        Ok((cli.ok(&["get", "nodes"])?.matches(" Ready ").count() == 2).then_some(()))
    })?;
    assert_eq!(running_on(&cli)?.len(), 4, "still exactly 4 ticker pods");
    Ok(())
}

#[test]
fn drain_moves_pods_and_keeps_the_node_cordoned() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let cli = server.cli();
    let _a = start_agent(&server.url(), "node-a", &tmp.path().join("a"))?;
    let _b = start_agent(&server.url(), "node-b", &tmp.path().join("b"))?;
    wait_until("both nodes Ready", Duration::from_secs(30), || {
        Ok((cli.ok(&["get", "nodes"])?.matches(" Ready ").count() == 2).then_some(()))
    })?;
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
