//! The walking skeleton end to end: a real `skiff server --dev` process, the real CLI, real
//! Wasm guests; kill -9 and restart on the same data directory.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{example, repo_root, wait_until, DevServer, Skiff};

const RUNNING_TIMEOUT: Duration = Duration::from_secs(60);

/// Names of the pods labelled `app=APP` in phase Running.
fn running_pods(cli: &Skiff, app: &str) -> anyhow::Result<Vec<String>> {
    let list = cli.json(&["get", "pods", "-l", &format!("app={app}")])?;
    Ok(items(&list)
        .iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect())
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn wait_running(cli: &Skiff, app: &str, count: usize) -> anyhow::Result<Vec<String>> {
    wait_until(
        &format!("{count} running {app} pods"),
        RUNNING_TIMEOUT,
        || {
            let running = running_pods(cli, app)?;
            let all = items(&cli.json(&["get", "pods", "-l", &format!("app={app}")])?);
            Ok((running.len() == count && all.len() == count).then_some(running))
        },
    )
}

#[test]
fn deployment_runs_scales_heals_and_survives_kill9() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let manifest = example("ticker");
    let manifest = manifest.to_str().expect("utf-8 path");

    let applied = cli.ok(&["apply", "-f", manifest])?;
    assert!(
        applied.contains("deployment.apps/ticker created"),
        "{applied}"
    );
    let pods = wait_running(&cli, "ticker", 3)?;

    // The guest's output reaches `skiff logs`, including the value from the ConfigMap.
    let logs = wait_until("ticker output in logs", Duration::from_secs(15), || {
        let out = cli.ok(&["logs", &pods[0]])?;
        Ok(out.contains("hello from a ConfigMap").then_some(out))
    })?;
    assert!(logs.lines().count() >= 1, "{logs}");

    // The list is Kubernetes-shaped.
    let list = cli.json(&["get", "pods"])?;
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");

    // A deleted pod is replaced.
    cli.ok(&["delete", "pod", &pods[0]])?;
    let replaced = wait_running(&cli, "ticker", 3)?;
    assert!(
        !replaced.contains(&pods[0]),
        "{replaced:?} still has {}",
        pods[0]
    );

    // Scaling.
    cli.ok(&["scale", "deployment", "ticker", "--replicas", "5"])?;
    wait_running(&cli, "ticker", 5)?;

    // kill -9 and restart: every object is still there and the pods run again.
    let before = cli.json(&["get", "deployment", "ticker"])?;
    server.kill9()?;
    server.restart()?;
    let after = cli.json(&["get", "deployment", "ticker"])?;
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(after["spec"]["replicas"], 5);
    cli.ok(&["get", "configmap", "ticker-config"])?;
    wait_running(&cli, "ticker", 5)?;

    // Deleting the manifest removes the Deployment, its ReplicaSets and pods.
    cli.ok(&["delete", "-f", manifest])?;
    wait_until(
        "ticker objects to be garbage collected",
        RUNNING_TIMEOUT,
        || {
            let rs = items(&cli.json(&["get", "replicasets"])?);
            let pods = items(&cli.json(&["get", "pods", "-l", "app=ticker"])?);
            Ok((rs.is_empty() && pods.is_empty()).then_some(()))
        },
    )?;
    assert!(!cli.run(&["get", "deployment", "ticker"])?.success);

    server.terminate()?;
    Ok(())
}

#[test]
fn completed_and_crashing_guests_are_reported() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    cli.ok(&["apply", "-f", example("crasher").to_str().expect("utf-8")])?;
    cli.ok(&["apply", "-f", example("hello").to_str().expect("utf-8")])?;

    // The crasher exits non-zero, is restarted, and shows its exit code and restart count.
    let pod = wait_until("the crasher to restart", RUNNING_TIMEOUT, || {
        let list = cli.json(&["get", "pods", "-l", "app=crasher"])?;
        Ok(items(&list).into_iter().find(|p| {
            let status = &p["status"]["containerStatuses"][0];
            status["restartCount"].as_i64().unwrap_or(0) >= 1
                && status["lastState"]["terminated"]["exitCode"] == 3
        }))
    })?;
    let name = pod["metadata"]["name"].as_str().expect("name");
    let table = cli.ok(&["get", "pods", "-l", "app=crasher"])?;
    assert!(table.contains(name), "{table}");

    // hello prints and completes.
    let done = wait_until("hello to complete", RUNNING_TIMEOUT, || {
        let list = cli.json(&["get", "pods", "-l", "app=hello"])?;
        Ok(items(&list)
            .into_iter()
            .find(|p| p["status"]["phase"] == "Succeeded"))
    })?;
    let hello = done["metadata"]["name"].as_str().expect("name");
    let logs = cli.ok(&["logs", hello])?;
    assert!(logs.to_lowercase().contains("hello"), "{logs}");
    Ok(())
}

#[test]
fn bad_input_is_rejected_whole_with_the_file_and_field_named() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();

    // Two documents: a valid ConfigMap and a Deployment with a bad replica count and quantity.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        r#"apiVersion: v1
kind: ConfigMap
metadata: {name: should-not-exist}
data: {k: v}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: -1
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers:
      - name: c
        image: file:/nonexistent/guest.wasm
        resources: {limits: {memory: 12Zi}}
"#,
    )?;
    let out = cli.run(&["apply", "-f", bad.to_str().expect("utf-8")])?;
    assert!(
        !out.success,
        "apply of a bad manifest succeeded: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("bad.yaml"),
        "error does not name the file: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("spec.replicas"),
        "error does not name the field: {}",
        out.stderr
    );
    assert!(
        !cli.run(&["get", "configmap", "should-not-exist"])?.success,
        "half-applied"
    );

    // Invalid YAML and unknown kinds name the file too.
    let garbage = tmp.path().join("garbage.yaml");
    std::fs::write(&garbage, "kind: [unclosed\n")?;
    let out = cli.run(&["apply", "-f", garbage.to_str().expect("utf-8")])?;
    assert!(
        !out.success && out.stderr.contains("garbage.yaml"),
        "{}",
        out.stderr
    );
    let unknown = tmp.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
    )?;
    let out = cli.run(&["apply", "-f", unknown.to_str().expect("utf-8")])?;
    assert!(
        !out.success && out.stderr.contains("Widget"),
        "{}",
        out.stderr
    );

    // The API itself rejects invalid objects with a 422 Status naming the field.
    let http = skiff_e2e::https_client(&server.url())?;
    let response = http
        .post(format!("{}/api/v1/namespaces/default/pods", server.url()))
        .json(&serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}))
        .send()?;
    assert_eq!(response.status().as_u16(), 422);
    let status: Value = response.json()?;
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Invalid");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.containers"),
        "{status}"
    );

    // The server is still healthy.
    cli.ok(&["get", "namespaces"])?;
    Ok(())
}

#[test]
fn cordoned_nodes_get_no_new_pods_until_uncordoned() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    // The dev node registers just after the API is ready.
    let node = wait_until("the dev node to register", Duration::from_secs(30), || {
        let nodes = cli.json(&["get", "nodes"])?;
        Ok(items(&nodes)
            .first()
            .and_then(|n| n["metadata"]["name"].as_str())
            .map(str::to_string))
    })?;
    assert_eq!(
        cli.ok(&["cordon", &node])?.trim(),
        format!("node/{node} cordoned")
    );
    assert!(cli
        .ok(&["get", "nodes"])?
        .contains("Ready,SchedulingDisabled"));

    cli.ok(&["apply", "-f", example("hello").to_str().expect("utf-8")])?;
    let pending = wait_until(
        "the scheduler to report the cordoned node",
        RUNNING_TIMEOUT,
        || {
            let pod = cli.json(&["get", "pod", "hello"])?;
            let reported = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "PodScheduled" && c["status"] == "False");
            Ok(reported.then_some(pod))
        },
    )?;
    assert!(pending["spec"]["nodeName"].is_null());
    let message = pending["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        message,
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );

    cli.ok(&["uncordon", &node])?;
    wait_until(
        "hello to run once the node is schedulable",
        RUNNING_TIMEOUT,
        || {
            let pod = cli.json(&["get", "pod", "hello"])?;
            Ok((pod["status"]["phase"] == "Succeeded").then_some(()))
        },
    )?;
    Ok(())
}

#[test]
fn server_dry_run_checks_writes_and_stores_nothing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let manifest = tmp.path().join("cm.yaml");
    let write = |value: &str| {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: dry}}\ndata: {{k: {value}}}\n"
            ),
        )
    };
    let file = manifest.to_str().expect("utf-8");

    write("one")?;
    let out = cli.ok(&["apply", "--dry-run=server", "-f", file])?;
    assert!(
        out.contains("configmap/dry created (server dry run)"),
        "{out}"
    );
    assert!(
        !cli.run(&["get", "configmap", "dry"])?.success,
        "a dry run stored the object"
    );

    cli.ok(&["apply", "-f", file])?;
    write("two")?;
    let out = cli.ok(&["apply", "--dry-run=server", "-f", file])?;
    assert!(
        out.contains("configmap/dry configured (server dry run)"),
        "{out}"
    );
    let out = cli.ok(&["delete", "configmap", "dry", "--dry-run=server"])?;
    assert!(out.contains("deleted (server dry run)"), "{out}");
    let stored = cli.json(&["get", "configmap", "dry"])?;
    assert_eq!(
        stored["data"]["k"], "one",
        "a dry run changed or deleted the object"
    );

    // Validation still answers in a dry run.
    std::fs::write(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: -1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: 'file:/x/y.wasm'}]}}}\n",
    )?;
    let out = cli.run(&["apply", "--dry-run=server", "-f", file])?;
    assert!(
        !out.success && out.stderr.contains("spec.replicas"),
        "{}",
        out.stderr
    );
    Ok(())
}

#[test]
fn every_example_manifest_is_accepted_by_the_server() -> anyhow::Result<()> {
    example("ticker"); // fails clearly when the guests have not been built
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let mut manifests = Vec::new();
    for dir in std::fs::read_dir(repo_root().join("wasm-examples"))? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "yaml") {
                manifests.push(file);
            }
        }
    }
    assert!(manifests.len() >= 5, "found only {manifests:?}");
    for manifest in &manifests {
        let file = manifest.to_str().expect("utf-8");
        let out = cli.run(&["apply", "--dry-run=server", "-f", file])?;
        assert!(out.success, "{file}: {}", out.stderr);
    }
    Ok(())
}
