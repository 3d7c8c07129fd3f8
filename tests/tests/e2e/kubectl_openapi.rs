//! Stock `kubectl` with the server's OpenAPI documents: `apply` validates without
//! `--validate=false` (kubectl finds `fieldValidation` in `/openapi/v3` and leaves validation
//! to the server), a typo'd field is refused naming it, `--validate=warn` warns and drops it,
//! and `explain` prints a field's description from `/openapi/v3`.

use skiff_e2e::{kubectl, kubectl_output, DevServer};

fn manifest(name: &str, replicas_field: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  {replicas_field}: 0
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: registry.example/app:1
"
    )
}

#[test]
fn stock_kubectl_applies_with_validation_refuses_typos_and_explains() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let write = |file: &str, text: String| -> anyhow::Result<String> {
        let path = tmp.path().join(file);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };

    let good = write("good.yaml", manifest("web", "replicas"))?;
    let created = k(&["apply", "-f", &good])?;
    assert!(created.contains("deployment.apps/web created"), "{created}");

    // A typo is refused by the server (kubectl sends fieldValidation=Strict), naming the field,
    // both for a new object (create) and for an existing one (a strategic merge patch).
    for (file, name) in [("new.yaml", "typo"), ("existing.yaml", "web")] {
        let bad = write(file, manifest(name, "replicaz"))?;
        let out = kubectl_output(&url, &cache, &["apply", "-f", &bad])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(r#"strict decoding error: unknown field "spec.replicaz""#),
            "{name}: {stderr}"
        );
    }
    let missing = kubectl_output(&url, &cache, &["get", "deploy", "typo"])?;
    assert!(!missing.status.success(), "nothing half-applied");

    // --validate=warn: created without the field, with the server's warning.
    let warned = write("warned.yaml", manifest("warned", "replicaz"))?;
    let out = kubectl_output(&url, &cache, &["apply", "--validate=warn", "-f", &warned])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.replicaz""#),
        "{stderr}"
    );

    let explained = k(&["explain", "deployment.spec.replicas"])?;
    assert!(
        explained.contains("FIELD: replicas <integer>"),
        "{explained}"
    );
    assert!(explained.contains("Number of desired pods"), "{explained}");
    let containers = k(&["explain", "pods.spec.containers.image"])?;
    assert!(containers.contains("Container image name"), "{containers}");
    Ok(())
}
