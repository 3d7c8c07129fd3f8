//! A dev server's node protects itself from its pods, through the real binary and CLI: pods
//! bound straight to it (`spec.nodeName`, no scheduler) beyond its `--max-pods` slots fail with
//! `OutOfpods` instead of running, and a guest without a memory limit gets the node's default
//! (`--default-container-memory`) and is OOMKilled at it.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{wait_until, wat_guest, DevServer};

/// Sleeps an hour in one host call: a pod that runs and costs nothing.
const SLEEP_AN_HOUR: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

/// Grows its memory 64 KiB at a time until refused, then exits 0.
const GROW_UNTIL_REFUSED: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))))"#;

/// A pod document bound straight to node `dev1`, never restarted.
fn pod(name: &str, guest: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: dev1\n  \
         restartPolicy: Never\n  containers:\n  - {{name: main, image: \"file:{guest}\"}}\n"
    )
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_dev_node_rejects_pods_beyond_its_slots_and_limits_unlimited_guests() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let server = DevServer::start_with_guests(
        &tmp.path().join("data"),
        &guests,
        &["--default-container-memory", "4Mi", "--max-pods", "20"],
    )?;
    let cli = server.cli();

    let grower = wat_guest(&guests, "grow", GROW_UNTIL_REFUSED)?;
    let path = tmp.path().join("grow.yaml");
    std::fs::write(&path, pod("grow", &grower))?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])?;
    let state = wait_until(
        "the unlimited guest to end",
        Duration::from_secs(60),
        || {
            let pod = cli.json(&["get", "pod", "grow"])?;
            let state = pod["status"]["containerStatuses"][0]["state"].clone();
            Ok(
                (state["terminated"].is_object() || pod["status"]["phase"] == "Failed")
                    .then_some(pod),
            )
        },
    )?;
    let terminated = &state["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{state}");

    // A finished pod no longer holds a slot: 20 sleepers run, the 21st is rejected.
    let sleeper = wat_guest(&guests, "sleep", SLEEP_AN_HOUR)?;
    let manifest: Vec<String> = (0..21).map(|i| pod(&format!("s{i}"), &sleeper)).collect();
    let path = tmp.path().join("pods.yaml");
    std::fs::write(&path, manifest.join("---\n"))?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])?;
    let (running, rejected) = wait_until(
        "20 pods running and one rejected",
        Duration::from_secs(120),
        || {
            let pods: Vec<Value> = items(&cli.json(&["get", "pods"])?)
                .into_iter()
                .filter(|p| p["metadata"]["name"] != "grow")
                .collect();
            let phase = |p: &&Value, phase: &str| p["status"]["phase"] == phase;
            let running = pods.iter().filter(|p| phase(p, "Running")).count();
            let failed: Vec<Value> = pods
                .iter()
                .filter(|p| phase(p, "Failed"))
                .cloned()
                .collect();
            Ok((running + failed.len() == 21).then_some((running, failed)))
        },
    )?;
    assert_eq!(running, 20);
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0]["status"]["reason"], "OutOfpods",
        "{}",
        rejected[0]
    );

    Ok(())
}
