//! PersistentVolumes with the built-in local-path provisioner: a claim of the default
//! (WaitForFirstConsumer) class waits for its first pod, is provisioned on that pod's node and
//! bound; deleting it deletes the volume (reclaim Delete) and the agent removes the directory;
//! a Retain class keeps its volume Released; a claim naming a missing class is refused.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{repo_root, start_agent, wait_until, DevServer, Skiff};

fn apply(cli: &Skiff, manifest: &str) -> anyhow::Result<skiff_e2e::CliOutput> {
    cli.run_with_stdin(&["apply", "-f", "-"], Some(manifest))
}

fn claim(name: &str, class: Option<&str>) -> String {
    let class = class
        .map(|c| format!("\n  storageClassName: {c}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 64Mi{class}\n"
    )
}

fn pod(name: &str, claim: &str) -> String {
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  \
         - name: ticker\n    image: file:{}\n    volumeMounts:\n    - name: data\n      \
         mountPath: /data\n  volumes:\n  - name: data\n    persistentVolumeClaim:\n      \
         claimName: {claim}\n",
        image.display()
    )
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The claim's volume name once it is Bound.
fn bound_volume(cli: &Skiff, claim: &str) -> anyhow::Result<Option<String>> {
    let pvc = cli.json(&["get", "pvc", claim])?;
    Ok(
        (text(&pvc, "/status/phase") == "Bound")
            .then(|| text(&pvc, "/spec/volumeName").to_string()),
    )
}

fn volume_exists(cli: &Skiff, name: &str) -> anyhow::Result<bool> {
    Ok(cli.run(&["get", "pv", name])?.success)
}

#[test]
fn local_path_volumes_wait_for_their_pod_and_are_reclaimed() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let cli = server.cli();
    let token = server.join_token()?;
    let agent = |name: &str| start_agent(&server.url(), &token, name, &tmp.path().join(name), &[]);
    let mut a = agent("node-a")?;
    let mut b = agent("node-b")?;
    wait_until("two nodes Ready", Duration::from_secs(30), || {
        a.check_running()?;
        b.check_running()?;
        let table = cli.ok(&["get", "nodes"])?;
        Ok((table.matches(" Ready ").count() == 2).then_some(()))
    })?;
    let classes = cli.ok(&["get", "sc"])?;
    assert!(
        classes.contains("local-path (default)") && classes.contains("WaitForFirstConsumer"),
        "{classes}"
    );

    // A claim naming a class that does not exist: 422 on the field, nothing created.
    let refused = apply(&cli, &claim("ghost", Some("no-such-class")))?;
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("spec.storageClassName"),
        "{}",
        refused.stderr
    );
    assert!(!cli.run(&["get", "pvc", "ghost"])?.success);

    // A pod whose claim does not exist stays Pending with the reason.
    anyhow::ensure!(apply(&cli, &pod("orphan", "nope"))?.success);
    wait_until(
        "the missing claim as the reason",
        Duration::from_secs(30),
        || {
            let pod = cli.json(&["get", "pod", "orphan"])?;
            let reason = pod["status"]["conditions"].to_string();
            Ok(reason
                .contains(r#"persistentvolumeclaim \"nope\" not found"#)
                .then_some(()))
        },
    )?;

    // The default class waits for the first consumer.
    anyhow::ensure!(apply(&cli, &claim("data", None))?.success);
    let pvc = cli.json(&["get", "pvc", "data"])?;
    assert_eq!(text(&pvc, "/spec/storageClassName"), "local-path");
    wait_until("WaitForFirstConsumer", Duration::from_secs(30), || {
        Ok(cli
            .ok(&["get", "events"])?
            .contains("WaitForFirstConsumer")
            .then_some(()))
    })?;
    let pvc = cli.json(&["get", "pvc", "data"])?;
    assert_eq!(text(&pvc, "/status/phase"), "Pending");
    assert_eq!(text(&pvc, "/spec/volumeName"), "");
    assert!(items(&cli.json(&["get", "pv"])?).is_empty());

    // Its first pod picks the node; the volume is provisioned there and bound.
    anyhow::ensure!(apply(&cli, &pod("user", "data"))?.success);
    let volume = wait_until("the claim Bound", Duration::from_secs(60), || {
        bound_volume(&cli, "data")
    })?;
    let node = wait_until("the pod bound", Duration::from_secs(30), || {
        let pod = cli.json(&["get", "pod", "user"])?;
        let node = text(&pod, "/spec/nodeName");
        Ok((!node.is_empty()).then(|| node.to_string()))
    })?;
    let pv = cli.json(&["get", "pv", &volume])?;
    assert_eq!(
        pv.pointer("/spec/nodeAffinity/required/nodeSelectorTerms/0/matchExpressions/0/values/0"),
        Some(&Value::String(node.clone())),
        "{pv}"
    );
    assert_eq!(text(&pv, "/spec/persistentVolumeReclaimPolicy"), "Delete");
    let root = std::fs::canonicalize(tmp.path().join(&node).join("storage"))?;
    let dir = PathBuf::from(text(&pv, "/spec/local/path"));
    assert_eq!(dir, root.join(format!("{volume}_default_data")));
    wait_until("the volume Bound", Duration::from_secs(30), || {
        let pv = cli.json(&["get", "pv", &volume])?;
        Ok((text(&pv, "/status/phase") == "Bound").then_some(()))
    })?;
    let table = cli.ok(&["get", "pvc"])?;
    assert!(
        table.contains("ACCESS MODES") && table.contains("RWO"),
        "{table}"
    );
    // The pod's data, as the agent's volume mount leaves it.
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("counter"), "1")?;

    // A Retain class (Immediate binding): the volume outlives its claim, Released.
    let keep = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: keep\n\
                provisioner: skiff.dev/local-path\nreclaimPolicy: Retain\n\
                volumeBindingMode: Immediate\n";
    anyhow::ensure!(apply(&cli, keep)?.success);
    anyhow::ensure!(apply(&cli, &claim("kept", Some("keep")))?.success);
    let kept = wait_until("the Immediate claim Bound", Duration::from_secs(60), || {
        bound_volume(&cli, "kept")
    })?;
    let pv = cli.json(&["get", "pv", &kept])?;
    let kept_dir = PathBuf::from(text(&pv, "/spec/local/path"));
    std::fs::create_dir_all(&kept_dir)?;
    cli.ok(&["delete", "pvc", "kept"])?;
    wait_until("the kept volume Released", Duration::from_secs(30), || {
        let pv = cli.json(&["get", "pv", &kept])?;
        Ok((text(&pv, "/status/phase") == "Released").then_some(()))
    })?;
    let table = cli.ok(&["get", "pv"])?;
    assert!(
        table.contains("Released") && table.contains("default/kept"),
        "{table}"
    );

    // Deleting the claim deletes the volume, and its node's agent the directory.
    cli.ok(&["delete", "pod", "user", "--grace-period", "0"])?;
    cli.ok(&["delete", "pvc", "data"])?;
    wait_until("the volume deleted", Duration::from_secs(30), || {
        Ok((!volume_exists(&cli, &volume)?).then_some(()))
    })?;
    wait_until("the directory removed", Duration::from_secs(60), || {
        Ok((!dir.exists()).then_some(()))
    })?;
    assert!(root.exists(), "the storage root itself stays");

    // Those sweeps left the Retain volume's directory alone.
    assert!(kept_dir.exists(), "a Retain volume's directory stays");
    let pv = cli.json(&["get", "pv", &kept])?;
    assert_eq!(text(&pv, "/status/phase"), "Released");
    a.check_running()?;
    b.check_running()?;
    Ok(())
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}
