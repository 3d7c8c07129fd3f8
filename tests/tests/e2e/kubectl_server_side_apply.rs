//! Stock `kubectl apply --server-side`: the server merges the manifest, records who owns
//! which field in `managedFields`, refuses to change fields another manager owns (here
//! `kubectl scale`'s replicas) unless `--force-conflicts`, and removes what a manifest stops
//! naming; `skiff apply --server-side` does the same.

use skiff_e2e::{kubectl, kubectl_output, DevServer};

/// A Deployment `web` of `replicas` (no node runs them) whose container has `env`.
fn deployment(replicas: u32, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("        - name: {k}\n          value: \"{v}\"\n"))
        .collect();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: registry.example/app:1
        env:
{env}"
    )
}

#[test]
fn stock_kubectl_applies_server_side_with_conflicts_and_removal() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let manifest = tmp.path().join("web.yaml");
    let file = manifest.to_str().expect("utf-8");
    let jsonpath = |path: &str| k(&["get", "deploy", "web", "-o", &format!("jsonpath={path}")]);

    std::fs::write(&manifest, deployment(0, &[("A", "1"), ("B", "2")]))?;
    let created = k(&["apply", "--server-side", "-f", file])?;
    assert!(
        created.contains("deployment.apps/web serverside-applied"),
        "{created}"
    );
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[0].env[*].name}")?,
        "A B"
    );

    // A change lands.
    std::fs::write(&manifest, deployment(0, &[("A", "7"), ("B", "2")]))?;
    k(&["apply", "--server-side", "-f", file])?;
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[0].env[0].value}")?,
        "7"
    );

    // `kubectl scale` owns replicas from then on: an apply that changes them conflicts.
    k(&["scale", "deploy/web", "--replicas=2"])?;
    std::fs::write(&manifest, deployment(1, &[("A", "7"), ("B", "2")]))?;
    let refused = kubectl_output(&url, &cache, &["apply", "--server-side", "-f", file])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the apply conflicts");
    assert!(
        stderr.contains("Apply failed with 1 conflict: conflict with \"kubectl\"")
            && stderr.contains("with subresource \"scale\"")
            && stderr.contains(".spec.replicas"),
        "{stderr}"
    );
    assert_eq!(jsonpath("{.spec.replicas}")?, "2");
    k(&["apply", "--server-side", "--force-conflicts", "-f", file])?;
    assert_eq!(jsonpath("{.spec.replicas}")?, "1");

    // Dropping env B and the label from the manifest removes them.
    let without = deployment(1, &[("A", "7")]).replace("  labels:\n    app: web\nspec:", "spec:");
    std::fs::write(&manifest, without)?;
    k(&["apply", "--server-side", "-f", file])?;
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[0].env[*].name}")?,
        "A"
    );
    assert_eq!(jsonpath("{.metadata.labels}")?, "");

    let yaml = k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ])?;
    assert!(
        yaml.contains("managedFields:") && yaml.contains("operation: Apply"),
        "{yaml}"
    );
    let json = k(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ])?;
    let object: serde_json::Value = serde_json::from_str(&json)?;
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let apply = entries
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        .unwrap_or_else(|| panic!("an Apply entry of kubectl: {yaml}"));
    assert_eq!(apply["fieldsType"], "FieldsV1");
    assert_eq!(apply["apiVersion"], "apps/v1");
    let containers = &apply["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert!(
        containers["k:{\"name\":\"app\"}"]["f:env"]["k:{\"name\":\"A\"}"].is_object(),
        "{yaml}"
    );
    assert!(
        apply["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "the forced apply owns replicas: {yaml}"
    );
    // Without the flag kubectl hides them, as on any cluster.
    let plain = k(&["get", "deploy", "web", "-o", "yaml"])?;
    assert!(!plain.contains("managedFields"), "{plain}");
    Ok(())
}

/// `skiff apply --server-side` speaks the same server-side apply: its fields are recorded
/// under `skiff`, a field `kubectl scale` took conflicts until `--force-conflicts`, and a
/// field the manifest stops naming goes.
#[test]
fn skiff_applies_server_side_with_conflicts_and_removal() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let cli = server.cli();
    let manifest = tmp.path().join("web.yaml");
    let file = manifest.to_str().expect("utf-8");
    let jsonpath = |path: &str| {
        kubectl(
            &url,
            &cache,
            &["get", "deploy", "web", "-o", &format!("jsonpath={path}")],
        )
    };

    let refused = cli.run(&["apply", "--force-conflicts", "-f", file])?;
    assert!(!refused.success, "--force-conflicts needs --server-side");

    std::fs::write(&manifest, deployment(0, &[("A", "1"), ("B", "2")]))?;
    let applied = cli.ok(&["apply", "--server-side", "-f", file])?;
    assert!(
        applied.contains("deployment.apps/web serverside-applied"),
        "{applied}"
    );
    assert_eq!(
        jsonpath("{.metadata.managedFields[0].manager}")?,
        "skiff",
        "recorded under the default field manager"
    );

    kubectl(&url, &cache, &["scale", "deploy/web", "--replicas=2"])?;
    std::fs::write(&manifest, deployment(1, &[("A", "1")]))?;
    let conflict = cli.run(&["apply", "--server-side", "-f", file])?;
    assert!(!conflict.success, "the apply conflicts");
    assert!(
        conflict.stderr.contains("conflict with \"kubectl\"")
            && conflict.stderr.contains(".spec.replicas"),
        "{}",
        conflict.stderr
    );
    assert_eq!(jsonpath("{.spec.replicas}")?, "2");
    cli.ok(&["apply", "--server-side", "--force-conflicts", "-f", file])?;
    assert_eq!(jsonpath("{.spec.replicas}")?, "1");
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[0].env[*].name}")?,
        "A",
        "env B, no longer applied, is gone"
    );

    // skiff's other writes name it too (its User-Agent), as kubectl's do.
    cli.ok(&["scale", "deployment/web", "--replicas", "3"])?;
    let managed: serde_json::Value = serde_json::from_str(&jsonpath("{.metadata.managedFields}")?)?;
    let update = managed
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["operation"] == "Update" && entry["manager"] == "skiff");
    assert!(
        update.is_some_and(|entry| entry["fieldsV1"]["f:spec"]["f:replicas"].is_object()),
        "skiff scale is recorded as an Update by skiff: {managed}"
    );
    Ok(())
}
