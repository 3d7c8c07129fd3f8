//! A StatefulSet rolling update across a leader loss: three `skiff server` processes and one
//! agent; the leader is killed with -9 while the set replaces its pods one ordinal at a time,
//! and the new leader's controller finishes from what the store holds (pods' revision labels,
//! ControllerRevisions, the status' revisions): no extra pods, no third revision, every pod
//! at the new template.

use std::time::Duration;

use skiff_e2e::{example, repo_root, wait_until, Cluster};

const TIMEOUT: Duration = Duration::from_secs(90);
const REPLICAS: usize = 6;

fn manifest(message: &str) -> String {
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
      - name: ticker
        image: file:{image}
        env: [{{name: MESSAGE, value: "{message}"}}]
        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
"#,
        image = image.display()
    )
}

#[test]
fn a_statefulset_rollout_survives_the_leaders_loss() -> anyhow::Result<()> {
    example("ticker");
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(&tmp.path().join("servers"), 3, &[])?;
    let cli = cluster.cli();
    let _agent = cluster.join_agent("n1", &tmp.path().join("n1"), &[])?;
    let apply = |message: &str| cli.apply_yaml(&manifest(message));
    apply("one")?;
    cli.ok(&["rollout", "status", "sts/db", "--timeout", "80s"])?;

    apply("two")?;
    wait_until("the rollout to be under way", TIMEOUT, || {
        let set = cli.json(&["get", "sts", "db"])?;
        let updated = set["status"]["updatedReplicas"].as_i64().unwrap_or(0);
        let observed = set["status"]["observedGeneration"] == set["metadata"]["generation"];
        Ok((observed && (1..REPLICAS as i64 - 1).contains(&updated)).then_some(()))
    })?;
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    let status = cli.ok(&["rollout", "status", "sts/db", "--timeout", "80s"])?;
    assert!(
        status.contains(&format!("rolling update complete {REPLICAS} pods")),
        "{status}"
    );

    let set = cli.json(&["get", "sts", "db"])?;
    let update = set["status"]["updateRevision"].clone();
    assert_eq!(set["status"]["currentRevision"], update, "{set}");
    let revisions = cli.items(&["get", "controllerrevisions"])?;
    assert_eq!(
        revisions.len(),
        2,
        "one revision per template: {revisions:#?}"
    );
    let pods = wait_until("the set's pods at the new revision", TIMEOUT, || {
        let pods = cli.items(&["get", "pods", "-l", "app=db"])?;
        let done = pods.len() == REPLICAS
            && pods
                .iter()
                .all(|p| p["metadata"]["labels"]["controller-revision-hash"] == update);
        Ok(done.then_some(pods))
    })?;
    let mut names: Vec<String> = pods
        .iter()
        .map(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    let want: Vec<String> = (0..REPLICAS).map(|i| format!("db-{i}")).collect();
    assert_eq!(names, want);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["env"][0]["value"] == "two"));
    Ok(())
}
