//! Deployment rollouts end to end on a dev server: revisions with change-causes, history,
//! undo to a named revision, pause and resume, restart, and a rollout that cannot progress
//! failing `skiff rollout status` past its deadline.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_e2e::{example, repo_root, wait_until, DevServer, Skiff};

const TIMEOUT: Duration = Duration::from_secs(60);
const NAME: &str = "roll";

/// The ticker guest's module.
fn example_image() -> std::path::PathBuf {
    repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm")
}

/// The `roll` Deployment of 3 tickers printing `message`, recorded with `cause`.
fn manifest(message: &str, cause: &str) -> String {
    let image = example_image();
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {NAME}
  annotations:
    kubernetes.io/change-cause: "{cause}"
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {NAME}}}
  template:
    metadata:
      labels: {{app: {NAME}}}
    spec:
      containers:
      - name: ticker
        image: file:{image}
        env:
        - {{name: MESSAGE, value: "{message}"}}
        resources:
          requests: {{cpu: 10m, memory: 16Mi}}
"#,
        image = image.display()
    )
}

fn apply(cli: &Skiff, message: &str, cause: &str) -> anyhow::Result<()> {
    let out = cli.run_with_stdin(&["apply", "-f", "-"], Some(&manifest(message, cause)))?;
    anyhow::ensure!(out.success, "apply failed: {}", out.stderr);
    Ok(())
}

fn status_ok(cli: &Skiff) -> anyhow::Result<()> {
    let out = cli.ok(&[
        "rollout",
        "status",
        &format!("deployment/{NAME}"),
        "--timeout",
        "50s",
    ])?;
    assert!(out.contains("successfully rolled out"), "{out}");
    Ok(())
}

/// A merge patch of the Deployment straight through the API (as `kubectl patch` would).
fn patch(server: &DevServer, patch: &Value) -> anyhow::Result<()> {
    let response = skiff_e2e::https_client(&server.url())?
        .patch(format!(
            "{}/apis/apps/v1/namespaces/default/deployments/{NAME}",
            server.url()
        ))
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()?;
    anyhow::ensure!(
        response.status().is_success(),
        "patch: {}",
        response.text()?
    );
    Ok(())
}

/// A patch setting the container's image (and keeping its resources).
fn image_patch(image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{
        "name": "ticker", "image": image,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
}

fn deployment(cli: &Skiff) -> anyhow::Result<Value> {
    cli.json(&["get", "deployment", NAME])
}

fn message(object: &Value, template: &str) -> Value {
    object
        .pointer(&format!("{template}/spec/containers/0/env/0/value"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn replicasets(cli: &Skiff) -> anyhow::Result<Vec<Value>> {
    let list = cli.json(&["get", "replicasets", "-l", &format!("app={NAME}")])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// Revision numbers and change-causes as `skiff rollout history` prints them.
fn history(cli: &Skiff) -> anyhow::Result<Vec<(String, String)>> {
    let out = cli.ok(&["rollout", "history", &format!("deployment/{NAME}")])?;
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(format!("deployment.apps/{NAME}").as_str()),
        "{out}"
    );
    assert!(
        lines.next().is_some_and(|h| h.starts_with("REVISION")),
        "{out}"
    );
    Ok(lines
        .map(|l| {
            let (revision, cause) = l.split_once(' ').unwrap_or((l, ""));
            (revision.to_string(), cause.trim().to_string())
        })
        .collect())
}

#[test]
fn rollouts_keep_history_undo_pause_and_fail_past_their_deadline() -> anyhow::Result<()> {
    example("ticker");
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let target = format!("deployment/{NAME}");

    // Three revisions, each rolled out to the end.
    for (message, cause) in [("one", "first"), ("two", "second"), ("three", "third")] {
        apply(&cli, message, cause)?;
        status_ok(&cli)?;
    }
    let d = deployment(&cli)?;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let listed = history(&cli)?;
    let want = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect()
    };
    assert_eq!(
        listed,
        want(&[("1", "first"), ("2", "second"), ("3", "third")])
    );
    let first = cli.ok(&["rollout", "history", &target, "--revision", "1"])?;
    assert!(first.contains("one") && !first.contains("three"), "{first}");

    // Undo to revision 1: its ReplicaSet comes back as revision 4, no new ReplicaSet is made.
    let undo = cli.ok(&["rollout", "undo", &target, "--to-revision", "1"])?;
    assert!(undo.contains("rolled back"), "{undo}");
    status_ok(&cli)?;
    let d = deployment(&cli)?;
    assert_eq!(message(&d, "/spec/template"), "one");
    assert_eq!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "first"
    );
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert_eq!(
        history(&cli)?,
        want(&[("2", "second"), ("3", "third"), ("4", "first")])
    );
    let sets = replicasets(&cli)?;
    assert_eq!(sets.len(), 3, "{sets:#?}");
    let active: Vec<&Value> = sets
        .iter()
        .filter(|rs| rs["spec"]["replicas"] != 0)
        .collect();
    assert_eq!(active.len(), 1, "{sets:#?}");
    assert_eq!(message(active[0], "/spec/template"), "one");

    // Paused: a template change is observed but not rolled out; resume rolls it out. (`skiff
    // apply` replaces the whole spec, `paused` too, so the change is a patch.)
    cli.ok(&["rollout", "pause", &target])?;
    let mut env = image_patch(&format!("file:{}", example_image().display()));
    env["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "MESSAGE", "value": "five"}]);
    patch(&server, &env)?;
    let paused = wait_until("the paused change to be observed", TIMEOUT, || {
        let d = deployment(&cli)?;
        let observed = d["status"]["observedGeneration"] == d["metadata"]["generation"];
        Ok(observed.then_some(d))
    })?;
    let progressing = paused["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(progressing["reason"], "DeploymentPaused", "{paused:#}");
    assert_eq!(replicasets(&cli)?.len(), 3, "no ReplicaSet while paused");
    cli.ok(&["rollout", "resume", &target])?;
    status_ok(&cli)?;
    assert_eq!(replicasets(&cli)?.len(), 4);

    // Restart rolls every pod through a new template annotation.
    cli.ok(&["rollout", "restart", &target])?;
    status_ok(&cli)?;
    let d = deployment(&cli)?;
    assert!(
        d.pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some(),
        "{d:#}"
    );

    // An image that cannot be pulled: a missing file under the allowed directory. The CLI
    // refuses such a manifest, so the change goes straight to the API.
    let missing = repo_root().join("wasm-examples/target/wasm32-wasip1/release/missing.wasm");
    assert!(!missing.exists());
    let mut broken = image_patch(&format!("file:{}", missing.display()));
    broken["spec"]["progressDeadlineSeconds"] = json!(6);
    patch(&server, &broken)?;
    let timed_out = cli.run(&["rollout", "status", &target, "--timeout", "2s"])?;
    assert!(!timed_out.success, "{timed_out:?}");
    assert!(timed_out.stderr.contains("timed out"), "{timed_out:?}");
    let exceeded = cli.run(&["rollout", "status", &target])?;
    assert!(!exceeded.success, "{exceeded:?}");
    assert!(
        exceeded.stderr.contains("exceeded its progress deadline"),
        "{exceeded:?}"
    );
    assert!(
        exceeded.stdout.contains("Waiting for deployment"),
        "{exceeded:?}"
    );
    // maxUnavailable 25% of 3 rounds down to 0: the old pods kept serving throughout.
    let d = deployment(&cli)?;
    assert_eq!(d["status"]["availableReplicas"], 3, "{d:#}");
    Ok(())
}
