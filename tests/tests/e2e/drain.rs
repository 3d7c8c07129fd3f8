//! `skiff drain` through the eviction subresource with real agents: a Deployment of 3 under
//! a PodDisruptionBudget of minAvailable 2 leaves a node one pod at a time, each eviction
//! waiting for the replacement to be Ready; a budget of maxUnavailable 0 makes the drain time
//! out with the budget named, and the pods keep running.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{example, start_with_agents, wait_until, Skiff};

/// Ready, not terminating, ticker pods and their nodes.
fn ready_on(cli: &Skiff) -> anyhow::Result<Vec<(String, String)>> {
    let list = cli.json(&["get", "pods", "-l", "app=ticker"])?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|p| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&p["metadata"]["name"]), s(&p["spec"]["nodeName"]))
        })
        .collect())
}

fn apply(cli: &Skiff, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])
}

fn wait_allowed(cli: &Skiff, pdb: &str, allowed: i64) -> anyhow::Result<()> {
    wait_until(
        &format!("pdb {pdb} to allow {allowed}"),
        Duration::from_secs(30),
        || {
            let pdb = cli.json(&["get", "pdb", pdb])?;
            Ok((pdb["status"]["disruptionsAllowed"] == allowed).then_some(()))
        },
    )
}

#[test]
fn drain_honours_disruption_budgets() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, _agents) = start_with_agents(tmp.path(), &[], &["node-a", "node-b"])?;
    let cli = server.cli();
    // All three replicas on node-a, so draining it has to go one at a time.
    cli.ok(&["cordon", "node-b"])?;
    cli.ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    wait_until("3 ready pods on node-a", Duration::from_secs(60), || {
        let ready = ready_on(&cli)?;
        Ok((ready.len() == 3 && ready.iter().all(|(_, n)| n == "node-a")).then_some(()))
    })?;
    cli.ok(&["uncordon", "node-b"])?;
    apply(
        &cli,
        tmp.path(),
        "pdb",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: ticker}\n\
         spec:\n  minAvailable: 2\n  selector: {matchLabels: {app: ticker}}\n",
    )?;
    wait_allowed(&cli, "ticker", 1)?;
    let table = cli.ok(&["get", "pdb"])?;
    assert!(
        table.contains("MIN AVAILABLE")
            && table.lines().any(|l| {
                l.split_whitespace().take(4).collect::<Vec<_>>() == ["ticker", "2", "N/A", "1"]
            }),
        "{table}"
    );

    // While the drain runs, a watcher counts the Ready replicas: never under the budget's 2.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (cli, done) = (cli.clone(), done.clone());
        std::thread::spawn(move || {
            let mut fewest = usize::MAX;
            while !done.load(Ordering::SeqCst) {
                if let Ok(ready) = ready_on(&cli) {
                    fewest = fewest.min(ready.len());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            fewest
        })
    };
    let out = cli.ok(&["drain", "node-a", "--grace-period", "1", "--timeout", "120"]);
    done.store(true, Ordering::SeqCst);
    let fewest = watcher.join().expect("watcher");
    let out = out?;
    println!("{out}");
    assert!(
        fewest >= 2,
        "{fewest} Ready replicas during the drain: {out}"
    );
    assert_eq!(
        out.matches("evicting pod default/ticker-").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("Cannot evict pod as it would violate the pod's disruption budget.")
            && out.contains("(will retry)"),
        "the budget held the later evictions back: {out}"
    );
    assert!(out.contains("node/node-a drained"), "{out}");
    wait_until("3 ready pods on node-b", Duration::from_secs(60), || {
        let ready = ready_on(&cli)?;
        Ok((ready.len() == 3 && ready.iter().all(|(_, n)| n == "node-b")).then_some(()))
    })?;
    let left = cli.ok(&["get", "pods", "--field-selector", "spec.nodeName=node-a"])?;
    assert!(!left.contains("ticker-"), "nothing left on node-a: {left}");

    // A budget that allows no disruption: the drain gives up, naming it, and pods keep running.
    cli.ok(&["delete", "pdb", "ticker"])?;
    apply(
        &cli,
        tmp.path(),
        "frozen",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: frozen}\n\
         spec:\n  maxUnavailable: 0\n  selector: {matchLabels: {app: ticker}}\n",
    )?;
    wait_until("frozen to be computed", Duration::from_secs(30), || {
        let pdb = cli.json(&["get", "pdb", "frozen"])?;
        Ok(
            (pdb["status"]["expectedPods"] == 3 && pdb["status"]["disruptionsAllowed"] == 0)
                .then_some(()),
        )
    })?;
    let out = cli.run(&["drain", "node-b", "--timeout", "3"])?;
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("drain of node node-b did not complete within 3s")
            && out
                .stderr
                .contains("The disruption budget frozen needs 3 healthy pods and has 3 currently"),
        "{}",
        out.stderr
    );
    let ready = ready_on(&cli)?;
    assert_eq!(ready.len(), 3, "the pods keep running: {ready:?}");
    Ok(())
}

#[test]
fn drain_waits_for_the_evicted_pod_not_its_namesake() -> anyhow::Result<()> {
    let guest = example("ticker")
        .parent()
        .expect("example dir")
        .join("../target/wasm32-wasip1/release/ticker.wasm");
    let tmp = tempfile::tempdir()?;
    let (server, _agents) = start_with_agents(tmp.path(), &[], &["node-a", "node-b"])?;
    let cli = server.cli();
    cli.ok(&["cordon", "node-b"])?;
    // A StatefulSet brings an evicted pod back under the same name at once.
    apply(
        &cli,
        tmp.path(),
        "sts",
        &format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: web}}\nspec:\n  \
             serviceName: web\n  replicas: 2\n  selector: {{matchLabels: {{app: ticker}}}}\n  \
             template:\n    metadata: {{labels: {{app: ticker}}}}\n    spec:\n      \
             terminationGracePeriodSeconds: 1\n      containers:\n      \
             - {{name: t, image: \"file:{}\"}}\n",
            guest.display()
        ),
    )?;
    wait_until("2 ready pods on node-a", Duration::from_secs(60), || {
        let ready = ready_on(&cli)?;
        Ok((ready.len() == 2 && ready.iter().all(|(_, n)| n == "node-a")).then_some(()))
    })?;
    cli.ok(&["uncordon", "node-b"])?;
    let out = cli.ok(&["drain", "node-a", "--timeout", "60"])?;
    assert!(
        out.contains("pod/web-0 evicted") && out.contains("pod/web-1 evicted"),
        "{out}"
    );
    assert!(out.contains("node/node-a drained"), "{out}");
    wait_until(
        "web-0 and web-1 ready on node-b",
        Duration::from_secs(60),
        || {
            let ready = ready_on(&cli)?;
            Ok((ready.len() == 2 && ready.iter().all(|(_, n)| n == "node-b")).then_some(()))
        },
    )?;
    Ok(())
}
