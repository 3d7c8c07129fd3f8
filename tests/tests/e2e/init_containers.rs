//! Init and sidecar containers on a dev server with real Wasm guests: init containers run in
//! order to completion before the app starts (their logs readable with `-c`), a sidecar keeps
//! running beside the app, a failing init container holds the app back in
//! `Init:CrashLoopBackOff` (or fails a `Never` pod with `Init:Error`), and a Never pod with a
//! sidecar completes once its app container has, with the sidecar stopped; after a restart of
//! the node, completed init containers are not run again.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{copy_example_guest, wait_until, wat_guest, DevServer, Skiff};

/// Exits with code 1 at once.
const FAIL: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;

fn apply(cli: &Skiff, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])
}

/// The pod's row in `skiff get pods`, split on whitespace.
fn row(cli: &Skiff, pod: &str) -> anyhow::Result<Vec<String>> {
    let table = cli.ok(&["get", "pods"])?;
    Ok(table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pod))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default())
}

fn wait_for_status(cli: &Skiff, pod: &str, status: &str, timeout: u64) -> anyhow::Result<()> {
    wait_until(
        &format!("pod {pod} to show {status}"),
        Duration::from_secs(timeout),
        || {
            let row = row(cli, pod)?;
            Ok((row.get(2).map(String::as_str) == Some(status)).then_some(()))
        },
    )
}

fn pod(cli: &Skiff, name: &str) -> anyhow::Result<Value> {
    cli.json(&["get", "pod", name])
}

fn status_of<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod["status"][list]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn init_containers_run_in_order_and_sidecars_run_beside_the_app() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let mut server = DevServer::start_with_guests(&tmp.path().join("data"), &guests, &[])?;
    let cli = server.cli();
    let hello = copy_example_guest(&guests, "hello")?;
    let ticker = copy_example_guest(&guests, "ticker")?;
    let fail = wat_guest(&guests, "fail", FAIL)?;

    // Two init containers with a sidecar between them, then the app.
    apply(
        &cli,
        tmp.path(),
        "ordered",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: ordered}}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
             initContainers:\n  \
             - {{name: first, image: \"file:{hello}\", env: [{{name: GREETING_TARGET, value: first}}]}}\n  \
             - {{name: side, image: \"file:{ticker}\", restartPolicy: Always}}\n  \
             - {{name: second, image: \"file:{hello}\", env: [{{name: GREETING_TARGET, value: second}}]}}\n  \
             containers:\n  - {{name: app, image: \"file:{ticker}\"}}\n"
        ),
    )?;
    wait_until("ordered to run", Duration::from_secs(60), || {
        let p = pod(&cli, "ordered")?;
        Ok((p["status"]["phase"] == "Running"
            && status_of(&p, "containerStatuses", "app")["ready"] == true)
            .then_some(p))
    })?;
    let p = pod(&cli, "ordered")?;
    for init in ["first", "second"] {
        let terminated = &status_of(&p, "initContainerStatuses", init)["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 0, "{init}: {p}");
        assert_eq!(terminated["reason"], "Completed", "{init}: {p}");
    }
    let side = status_of(&p, "initContainerStatuses", "side");
    assert!(side["state"]["running"].is_object(), "{p}");
    assert_eq!(side["ready"], true, "{p}");
    let first_done = status_of(&p, "initContainerStatuses", "first")["state"]["terminated"]
        ["finishedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let second_started = status_of(&p, "initContainerStatuses", "second")["state"]["terminated"]
        ["startedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let app_started = status_of(&p, "containerStatuses", "app")["state"]["running"]["startedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        first_done <= second_started && second_started <= app_started,
        "in order: {p}"
    );
    let initialized = p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Initialized" && c["status"] == "True");
    assert!(initialized, "{p}");
    let r = row(&cli, "ordered")?;
    assert_eq!(
        r[1..3],
        ["2/2", "Running"],
        "sidecars count in READY: {r:?}"
    );
    let described = cli.ok(&["describe", "pod", "ordered"])?;
    assert!(
        described.contains("Init Containers:\n  first:")
            && described.contains("Containers:\n  app:"),
        "{described}"
    );
    let logs = cli.ok(&["logs", "ordered", "-c", "second"])?;
    assert!(logs.contains("Hello, second!"), "{logs}");
    wait_until("the sidecar's log", Duration::from_secs(20), || {
        let logs = cli.ok(&["logs", "ordered", "-c", "side"])?;
        Ok(logs.contains("tick").then_some(()))
    })?;

    // A failing init container holds the app back, restarting with a back-off.
    apply(
        &cli,
        tmp.path(),
        "stuck",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: stuck}}\nspec:\n  \
             initContainers:\n  - {{name: setup, image: \"file:{fail}\"}}\n  \
             containers:\n  - {{name: app, image: \"file:{ticker}\"}}\n"
        ),
    )?;
    wait_for_status(&cli, "stuck", "Init:CrashLoopBackOff", 30)?;
    let p = pod(&cli, "stuck")?;
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    let app = status_of(&p, "containerStatuses", "app");
    assert_eq!(app["state"]["waiting"]["reason"], "PodInitializing", "{p}");
    assert!(app["containerID"].is_null(), "the app never started: {p}");

    // In a Never pod a failed init container fails the pod.
    apply(
        &cli,
        tmp.path(),
        "once",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: once}}\nspec:\n  restartPolicy: Never\n  \
             initContainers:\n  - {{name: setup, image: \"file:{fail}\"}}\n  \
             containers:\n  - {{name: app, image: \"file:{ticker}\"}}\n"
        ),
    )?;
    wait_for_status(&cli, "once", "Init:Error", 30)?;
    assert_eq!(pod(&cli, "once")?["status"]["phase"], "Failed");

    // A Job-style pod: the app completes, the sidecar is stopped, the pod succeeds.
    apply(
        &cli,
        tmp.path(),
        "batch",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: batch}}\nspec:\n  restartPolicy: Never\n  \
             terminationGracePeriodSeconds: 1\n  \
             initContainers:\n  - {{name: side, image: \"file:{ticker}\", restartPolicy: Always}}\n  \
             containers:\n  - {{name: work, image: \"file:{hello}\"}}\n"
        ),
    )?;
    let p = wait_until("batch to succeed", Duration::from_secs(60), || {
        let p = pod(&cli, "batch")?;
        Ok((p["status"]["phase"] == "Succeeded").then_some(p))
    })?;
    let side = status_of(&p, "initContainerStatuses", "side");
    assert!(
        side["state"]["terminated"].is_object(),
        "sidecar stopped: {p}"
    );
    let work = status_of(&p, "containerStatuses", "work");
    assert_eq!(work["state"]["terminated"]["exitCode"], 0, "{p}");

    // After a restart of the dev server (and its agent), the running pod's completed init
    // containers are not run again; its sidecar and app start again.
    server.terminate()?;
    server.restart()?;
    let p = wait_until("ordered to run again", Duration::from_secs(60), || {
        let p = pod(&cli, "ordered")?;
        let app = status_of(&p, "containerStatuses", "app");
        Ok((app["restartCount"] == 1 && app["ready"] == true).then_some(p))
    })?;
    for init in ["first", "second"] {
        let status = status_of(&p, "initContainerStatuses", init);
        assert_eq!(status["restartCount"], 0, "{init} not rerun: {p}");
        assert_eq!(status["state"]["terminated"]["exitCode"], 0, "{init}: {p}");
    }
    assert_eq!(
        status_of(&p, "initContainerStatuses", "side")["restartCount"],
        1,
        "{p}"
    );

    // Names are unique across init and app containers.
    let path = tmp.path().join("dup.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: dup}}\nspec:\n  \
             initContainers:\n  - {{name: app, image: \"file:{hello}\"}}\n  \
             containers:\n  - {{name: app, image: \"file:{ticker}\"}}\n"
        ),
    )?;
    let out = cli.run(&["apply", "-f", path.to_str().expect("utf-8")])?;
    assert!(
        !out.success && out.stderr.contains("spec.containers[0].name"),
        "{}",
        out.stderr
    );
    Ok(())
}
