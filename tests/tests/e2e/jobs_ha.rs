//! A Job across a leader kill (three servers, one agent): the new leader's Job controller
//! carries on from the pods it finds, so every index of an Indexed Job succeeds exactly once and
//! no pod is doubled or lost.

use std::collections::BTreeMap;
use std::time::Duration;

use skiff_e2e::{wait_until, Cluster};

/// Sleeps a second in one host call, then exits 0.
const WORK_A_SECOND: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 1000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

#[test]
fn an_indexed_job_survives_a_leader_kill_without_doubling_pods() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    std::fs::create_dir(&guests)?;
    let guest = guests.join("work.wasm");
    std::fs::write(&guest, wat::parse_str(WORK_A_SECOND)?)?;
    let mut cluster = Cluster::start(&tmp.path().join("servers"), 3, &[])?;
    let cli = cluster.cli();
    let dir = guests.display().to_string();
    let _agent = cluster.join_agent("n1", &tmp.path().join("n1"), &["--allow-image-dir", &dir])?;
    let manifest = tmp.path().join("job.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: batch}}\nspec:\n  completions: 8\n  \
             parallelism: 2\n  completionMode: Indexed\n  backoffLimit: 0\n  template:\n    spec:\n      \
             restartPolicy: Never\n      containers:\n      - {{name: work, image: \"file:{}\"}}\n",
            guest.display()
        ),
    )?;
    cli.ok(&["apply", "-f", manifest.to_str().expect("utf-8")])?;
    let succeeded = |cli: &skiff_e2e::Skiff| -> anyhow::Result<i64> {
        Ok(cli.json(&["get", "job", "batch"])?["status"]["succeeded"]
            .as_i64()
            .unwrap_or(0))
    };
    wait_until("two indexes done", Duration::from_secs(60), || {
        Ok((succeeded(&cli)? >= 2).then_some(()))
    })?;
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    cluster.restart(leader)?;
    cli.ok(&[
        "wait",
        "--for=condition=complete",
        "job/batch",
        "--timeout",
        "55s",
    ])?;

    let job = cli.json(&["get", "job", "batch"])?;
    assert_eq!(job["status"]["succeeded"], 8, "{job}");
    assert_eq!(job["status"]["completedIndexes"], "0-7", "{job}");
    assert!(job["status"]["failed"].is_null(), "{job}");
    let pods = cli.json(&["get", "pods", "-l", "job-name=batch"])?;
    let mut by_index: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let phase = pod["status"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        by_index.entry(index).or_default().push(phase);
    }
    let expected: BTreeMap<String, Vec<String>> = (0..8)
        .map(|i| (i.to_string(), vec!["Succeeded".to_string()]))
        .collect();
    assert_eq!(by_index, expected, "one pod per index, each Succeeded");
    Ok(())
}
