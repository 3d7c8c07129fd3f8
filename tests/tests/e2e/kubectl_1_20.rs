//! An older stock kubectl, Debian's 1.20 (`scripts/install-deps.sh` unpacks it beside the
//! kubectl on PATH), against a dev server: discovery, client-side apply and re-apply with a
//! change (`diff`), rollout status, `get -o wide` with kubectl's columns, logs, strategic merge
//! patch, scale, label, wait, events and delete. kubectl 1.20 validates manifests against the
//! protobuf `/openapi/v2` and reads Tables of `meta.k8s.io/v1`, as newer ones do.

use std::time::Duration;

use skiff_e2e::{example, kubectl_1_20, table_header, wait_until, DevServer};

/// A Deployment of the ticker guest (an absolute `file:` image: kubectl does not rewrite
/// paths as `skiff apply` does).
fn deployment(replicas: u32) -> String {
    let image = example("ticker")
        .parent()
        .expect("an example's directory")
        .join("../target/wasm32-wasip1/release/ticker.wasm")
        .canonicalize()
        .expect("the ticker guest is built");
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: file://{}
",
        image.display()
    )
}

#[test]
fn kubectl_1_20_applies_rolls_out_patches_scales_and_deletes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl_1_20(&url, &cache, args);

    let version = k(&["version", "--client"])?;
    assert!(version.contains("GitVersion:\"v1.20."), "{version}");
    let resources = k(&["api-resources"])?;
    assert!(
        resources.lines().any(|l| {
            l.split_whitespace().collect::<Vec<_>>()
                == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        }),
        "{resources}"
    );

    let manifest = tmp.path().join("web.yaml");
    let file = manifest.to_str().expect("utf-8");
    std::fs::write(&manifest, deployment(1))?;
    assert!(k(&["apply", "-f", file])?.contains("deployment.apps/web created"));
    std::fs::write(&manifest, deployment(2))?;
    // `kubectl diff` exits 1 when it finds a difference.
    let diff = skiff_e2e::kubectl_1_20(&url, &cache, &["diff", "-f", file]);
    let diff = diff.expect_err("diff finds the change").to_string();
    assert!(diff.contains("+  replicas: 2"), "{diff}");
    assert!(k(&["apply", "-f", file])?.contains("deployment.apps/web configured"));
    let rolled = k(&["rollout", "status", "deploy/web", "--timeout=90s"])?;
    assert!(rolled.contains("successfully rolled out"), "{rolled}");

    let wide = k(&["get", "pods", "-o", "wide"])?;
    let header = table_header(&wide);
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{wide}"
    );
    let pod = k(&["get", "pods", "-o", "name"])?
        .lines()
        .next()
        .map(str::to_string)
        .expect("a pod");
    let logs = wait_until("the pod's log", Duration::from_secs(30), || {
        let logs = k(&["logs", &pod])?;
        Ok(logs.contains("tick").then_some(logs))
    })?;
    assert!(logs.contains("tick 0"), "{logs}");

    k(&["patch", "deploy", "web", "-p", r#"{"spec":{"replicas":1}}"#])?;
    assert_eq!(
        k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?,
        "1"
    );
    k(&["scale", "deploy", "web", "--replicas=3"])?;
    k(&["label", "deploy", "web", "team=a"])?;
    assert_eq!(
        k(&["get", "deploy", "-l", "team=a", "-o", "name"])?.trim(),
        "deployment.apps/web"
    );
    let met = k(&[
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=90s",
    ])?;
    assert!(met.contains("condition met"), "{met}");
    let events = k(&["get", "events"])?;
    assert!(events.contains("ScalingReplicaSet"), "{events}");

    let deleted = k(&["delete", "deploy", "web"])?;
    assert!(
        deleted.contains("deployment.apps \"web\" deleted"),
        "{deleted}"
    );
    let left = server.cli().run(&["get", "deployment", "web"])?;
    assert!(
        !left.success,
        "the Deployment is still there: {}",
        left.stdout
    );
    Ok(())
}
