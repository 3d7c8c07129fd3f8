//! Stock `kubectl` writes built-in kinds the way it writes them on any cluster: `apply`
//! (client-side three-way merge through strategic merge patches and the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation), `set image`, `patch`
//! (strategic by default), `rollout restart`, `cordon`, `label`, `annotate`, `edit`, and `delete` with
//! `--cascade` and finalizers.
//! `apply` validates (kubectl's default): the server serves OpenAPI documents and
//! `fieldValidation` (tests/kubectl_openapi.rs).

use std::time::Duration;

use skiff_e2e::{kubectl, kubectl_command, kubectl_output, wait_until, DevServer};

/// A Deployment `web` of no replicas (nothing runs) with two containers; `app` has the image
/// and environment given.
fn deployment(app_image: &str, env: &[(&str, &str)]) -> String {
    named_deployment("web", app_image, env)
}

fn named_deployment(name: &str, app_image: &str, env: &[(&str, &str)]) -> String {
    let env: String = env
        .iter()
        .map(|(k, v)| format!("        - name: {k}\n          value: \"{v}\"\n"))
        .collect();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 0
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
        image: {app_image}
        env:
{env}      - name: side
        image: registry.example/side:1
"
    )
}

fn names(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

#[test]
fn stock_kubectl_applies_again_sets_images_patches_labels_and_annotates() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let manifest = tmp.path().join("web.yaml");
    let manifest_path = manifest.to_str().expect("utf-8");
    let jsonpath = |path: &str| k(&["get", "deploy", "web", "-o", &format!("jsonpath={path}")]);

    std::fs::write(
        &manifest,
        deployment("registry.example/app:1", &[("A", "1"), ("B", "2")]),
    )?;
    let created = k(&["apply", "-f", manifest_path])?;
    assert!(created.contains("deployment.apps/web created"), "{created}");
    let last_applied =
        jsonpath("{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}")?;
    let last_applied: serde_json::Value = serde_json::from_str(&last_applied)?;
    assert_eq!(
        last_applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/app:1"
    );

    // Another writer changes the side container (a strategic merge patch by name) and adds
    // an environment variable to it, which the manifest does not name.
    let set = k(&["set", "image", "deploy/web", "side=registry.example/side:2"])?;
    assert!(set.contains("deployment.apps/web image updated"), "{set}");
    k(&["set", "env", "deploy/web", "-c", "side", "EXTRA=1"])?;
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[1].image}")?,
        "registry.example/side:2"
    );

    // Applying a changed manifest merges three ways: its changes land (env B, which it no
    // longer lists, goes), the fields it sets win (the side image is its own again), and
    // what only the other writer set stays.
    std::fs::write(
        &manifest,
        deployment("registry.example/app:2", &[("A", "1"), ("C", "3")]),
    )?;
    let configured = k(&["apply", "-f", manifest_path])?;
    assert!(
        configured.contains("deployment.apps/web configured"),
        "{configured}"
    );
    assert_eq!(
        names(&jsonpath("{.spec.template.spec.containers[*].image}")?),
        ["registry.example/app:2", "registry.example/side:1"]
    );
    assert_eq!(
        jsonpath("{.spec.template.spec.containers[1].env[*].name}")?,
        "EXTRA"
    );
    assert_eq!(
        names(&jsonpath(
            "{.spec.template.spec.containers[0].env[*].name}"
        )?),
        ["A", "C"]
    );
    let unchanged = k(&["apply", "-f", manifest_path])?;
    assert!(
        unchanged.contains("deployment.apps/web unchanged"),
        "{unchanged}"
    );

    // `kubectl patch` sends a strategic merge patch: env merges by name.
    k(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"D","value":"4"}]}]}}}}"#,
    ])?;
    assert_eq!(
        names(&jsonpath(
            "{.spec.template.spec.containers[0].env[*].name}"
        )?),
        ["A", "C", "D"]
    );
    assert_eq!(
        names(&jsonpath("{.spec.template.spec.containers[*].name}")?),
        ["app", "side"]
    );

    // `rollout restart` and `cordon` send strategic merge patches too.
    let restarted = k(&["rollout", "restart", "deploy/web"])?;
    assert!(
        restarted.contains("deployment.apps/web restarted"),
        "{restarted}"
    );
    let at =
        jsonpath("{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}")?;
    assert!(!at.is_empty(), "no restartedAt annotation");
    let node = k(&["get", "nodes", "-o", "name"])?;
    let node = node
        .lines()
        .next()
        .expect("the dev server's node")
        .to_string();
    k(&["cordon", &node])?;
    let unschedulable = k(&["get", &node, "-o", "jsonpath={.spec.unschedulable}"])?;
    assert_eq!(unschedulable, "true");
    k(&["uncordon", &node])?;
    let unschedulable = k(&["get", &node, "-o", "jsonpath={.spec.unschedulable}"])?;
    assert_ne!(unschedulable, "true");

    k(&["label", "deploy", "web", "tier=front"])?;
    k(&["annotate", "deploy", "web", "note=hello"])?;
    assert_eq!(jsonpath("{.metadata.labels.tier}")?, "front");
    assert_eq!(jsonpath("{.metadata.annotations.note}")?, "hello");
    // `edit` with an editor that changes the annotation: kubectl sends the difference as a
    // strategic merge patch.
    let edited = kubectl_command(&url, &cache)
        .env("KUBE_EDITOR", "sed -i 's/note: hello$/note: edited/'")
        .args(["edit", "deploy", "web"])
        .output()?;
    assert!(
        String::from_utf8_lossy(&edited.stdout).contains("deployment.apps/web edited"),
        "{edited:?}"
    );
    assert_eq!(jsonpath("{.metadata.annotations.note}")?, "edited");
    k(&["label", "deploy", "web", "tier-"])?;
    assert_eq!(jsonpath("{.metadata.labels}")?, r#"{"app":"web"}"#);
    Ok(())
}

#[test]
fn stock_kubectl_deletes_with_cascade_and_finalizers() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let manifest = tmp.path().join("objects.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{}---\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  \
             finalizers: [example.com/keep]\ndata:\n  k: v\n",
            named_deployment("orphaner", "registry.example/app:1", &[("A", "1")]),
            named_deployment("foreground", "registry.example/app:1", &[("A", "1")]),
        ),
    )?;
    k(&["apply", "-f", manifest.to_str().expect("utf-8")])?;
    let replicaset_of = |app: &str| {
        k(&["get", "rs", "-l", &format!("app={app}"), "-o", "name"]).map(|n| n.trim().to_string())
    };
    for app in ["orphaner", "foreground"] {
        wait_until(
            "the deployment's ReplicaSet",
            Duration::from_secs(30),
            || Ok((!replicaset_of(app)?.is_empty()).then_some(())),
        )?;
    }

    // Orphan: the Deployment goes, its ReplicaSet stays without the owner reference.
    let rs = replicaset_of("orphaner")?;
    k(&[
        "delete",
        "deploy",
        "orphaner",
        "--cascade=orphan",
        "--timeout=60s",
    ])?;
    assert_eq!(replicaset_of("orphaner")?, rs, "the ReplicaSet stays");
    let owners = k(&["get", &rs, "-o", "jsonpath={.metadata.ownerReferences}"])?;
    assert!(
        owners.is_empty() || owners == "[]",
        "no owner left: {owners}"
    );

    // Foreground: kubectl waits for the Deployment, which goes after its ReplicaSet.
    k(&[
        "delete",
        "deploy",
        "foreground",
        "--cascade=foreground",
        "--timeout=60s",
    ])?;
    assert_eq!(
        replicaset_of("foreground")?,
        "",
        "the ReplicaSet went first"
    );

    // A finalizer keeps a deleted object, marked, until it is removed; none may be added.
    k(&["delete", "cm", "kept", "--wait=false"])?;
    let marked = k(&[
        "get",
        "cm",
        "kept",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ])?;
    assert!(!marked.is_empty(), "the ConfigMap is marked for deletion");
    let added = kubectl_output(
        &url,
        &cache,
        &[
            "patch",
            "cm",
            "kept",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/keep","more"]}}"#,
        ],
    )?;
    assert!(
        !added.status.success(),
        "a finalizer was added while deleting"
    );
    assert!(
        String::from_utf8_lossy(&added.stderr).contains("metadata.finalizers"),
        "{added:?}"
    );
    k(&[
        "patch",
        "cm",
        "kept",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])?;
    let gone = kubectl_output(&url, &cache, &["get", "cm", "kept"])?;
    assert!(
        !gone.status.success(),
        "the ConfigMap went with its last finalizer"
    );
    Ok(())
}
