//! A rollout across a leader loss: three `skiff server` processes and one agent; the leader is
//! killed with -9 while a Deployment rolls to a new version, and the new leader's controllers
//! finish it with neither a second new ReplicaSet nor extra pods.

use std::time::Duration;

use skiff_e2e::{example, repo_root, wait_until, Cluster};

const TIMEOUT: Duration = Duration::from_secs(60);

/// 10 tickers printing `message`; `minReadySeconds` slows each step so the kill lands mid-way.
fn manifest(message: &str) -> String {
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: roll}}
spec:
  replicas: 10
  minReadySeconds: 2
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 2, maxUnavailable: 2}}}}
  selector: {{matchLabels: {{app: roll}}}}
  template:
    metadata: {{labels: {{app: roll}}}}
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
fn a_rollout_survives_the_leaders_loss_without_doubling() -> anyhow::Result<()> {
    example("ticker");
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(&tmp.path().join("servers"), 3, &[])?;
    let cli = cluster.cli();
    let _agent = cluster.join_agent("n1", &tmp.path().join("n1"), &[])?;
    let apply = |message: &str| cli.apply_yaml(&manifest(message));
    apply("one")?;
    cli.ok(&["rollout", "status", "deployment/roll", "--timeout", "60s"])?;

    apply("two")?;
    wait_until("the rollout to be under way", TIMEOUT, || {
        let d = cli.json(&["get", "deployment", "roll"])?;
        let updated = d["status"]["updatedReplicas"].as_i64().unwrap_or(0);
        let observed = d["status"]["observedGeneration"] == d["metadata"]["generation"];
        Ok((observed && (1..10).contains(&updated)).then_some(()))
    })?;
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    let status = cli.ok(&["rollout", "status", "deployment/roll", "--timeout", "90s"])?;
    assert!(status.contains("successfully rolled out"), "{status}");

    let sets = cli.items(&["get", "replicasets", "-l", "app=roll"])?;
    assert_eq!(sets.len(), 2, "one ReplicaSet per revision: {sets:#?}");
    let new = sets
        .iter()
        .find(|rs| rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "two")
        .expect("the new ReplicaSet");
    assert_eq!(new["spec"]["replicas"], 10);
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let hash = new["metadata"]["labels"]["pod-template-hash"].clone();
    let pods = wait_until("only the new version's 10 pods", TIMEOUT, || {
        let pods = cli.items(&["get", "pods", "-l", "app=roll"])?;
        Ok((pods.len() == 10).then_some(pods))
    })?;
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash),
        "{pods:#?}"
    );
    let history = cli.ok(&["rollout", "history", "deployment/roll"])?;
    assert_eq!(
        history.lines().count(),
        4,
        "header lines and 2 revisions: {history}"
    );
    Ok(())
}
