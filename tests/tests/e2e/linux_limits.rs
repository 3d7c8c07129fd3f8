//! The Linux runtime's limits and isolation through a real server and agent, with the busybox
//! test image (Debian's busybox-static) from Debian's docker-registry: a memory hog over its
//! `limits.memory` ends `OOMKilled` with exit code 137 in `skiff get pod -o json` and
//! `skiff describe`; a fork loop stops at the agent's `--pod-pids-limit` (its cgroup's
//! pids.current stays at the limit) while the agent keeps running other pods; a container sees
//! neither the node's processes nor the node's files nor another pod's files; and on a cluster
//! of a wasm-only node and a wasm+linux node, class-less busybox pods are placed where the
//! Linux runtime is, while one bound to the wasm-only node waits `RuntimeUnavailable`. Needs
//! root, cgroups and busybox-static; leaves no process, cgroup or mount behind when it fails.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use skiff_e2e::linux::{cgroup_dirs, LinuxCluster};
use skiff_e2e::{wait_until, Skiff};

const WAIT: Duration = Duration::from_secs(90);
const LINUX: &[&str] = &["--runtimes", "wasm,linux"];

/// A busybox pod running `script` under `sh -c`, never restarted; `extra` is appended to the
/// container (indented YAML lines).
fn pod(name: &str, image: &str, script: &str, extra: &str) -> String {
    let script = serde_json::to_string(script).expect("a string");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  \
         terminationGracePeriodSeconds: 0\n  containers:\n  - name: {name}\n    \
         image: \"{image}\"\n    command: [\"sh\", \"-c\", {script}]\n{extra}"
    )
}

/// The pod once `done` says it is, failing early if an agent exits.
fn wait_pod(
    cluster: &mut LinuxCluster,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let cli = cluster.cli();
    let mut last = Value::Null;
    wait_until(what, WAIT, || {
        cluster.check_agents()?;
        last = cli.json(&["get", "pod", name])?;
        Ok(done(&last).then(|| last.clone()))
    })
    .with_context(|| format!("pod {name}: {last}"))
}

fn phase_is(phase: &'static str) -> impl Fn(&Value) -> bool {
    move |pod| pod["status"]["phase"] == phase
}

/// The pod's log once it contains `needle`.
fn wait_log(cli: &Skiff, name: &str, needle: &str) -> anyhow::Result<String> {
    wait_until(&format!("{name} to log {needle:?}"), WAIT, || {
        let log = cli.ok(&["logs", name]).unwrap_or_default();
        Ok(log.contains(needle).then_some(log))
    })
}

#[test]
fn a_memory_hog_over_its_limit_is_oom_killed() -> anyhow::Result<()> {
    let mut cluster = LinuxCluster::start(&[("node", LINUX)])?;
    let cli = cluster.cli();
    let limit = "    resources: {limits: {memory: 32Mi}}\n";
    let hog = "exec dd if=/dev/zero of=/dev/null bs=64M count=1";
    cli.apply_yaml(&pod("hog", &cluster.busybox, hog, limit))?;
    let pod = wait_pod(&mut cluster, "hog", "the hog to end", |p| {
        p["status"]["containerStatuses"][0]["state"]["terminated"].is_object()
    })?;
    let status = &pod["status"]["containerStatuses"][0];
    let terminated = &status["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{status}");
    assert_eq!(terminated["exitCode"], 137, "{status}");
    assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
    let described = cli.ok(&["describe", "pod", "hog"])?;
    assert!(
        described.contains("Terminated")
            && described.contains("OOMKilled")
            && described.contains("Exit Code:  137"),
        "{described}"
    );
    Ok(())
}

/// The one cgroup directory of container `name` under the agent's `data` that counts its
/// processes (`pids.current`: the pids hierarchy in v1, the container's directory in v2).
fn pids_dir(data: &Path, name: &str) -> anyhow::Result<Option<std::path::PathBuf>> {
    Ok(cgroup_dirs(data, name)?
        .into_iter()
        .find(|dir| dir.join("pids.current").exists()))
}

fn read_number(path: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.trim()
        .parse()
        .with_context(|| format!("{}: {text:?}", path.display()))
}

#[test]
fn a_fork_loop_stops_at_the_pids_limit_and_the_agent_keeps_serving() -> anyhow::Result<()> {
    let flags = ["--runtimes", "wasm,linux", "--pod-pids-limit", "64"];
    let mut cluster = LinuxCluster::start(&[("node", &flags)])?;
    let cli = cluster.cli();
    // The loop runs in a subshell, which ends when a fork fails; the container goes on.
    let bomb = "(for i in $(seq 200); do sleep 300 & done); echo loop over; exec sleep 3600";
    cli.apply_yaml(&pod("bomb", &cluster.busybox, bomb, ""))?;
    wait_pod(
        &mut cluster,
        "bomb",
        "the fork loop's pod to run",
        phase_is("Running"),
    )?;
    let log = wait_log(&cli, "bomb", "loop over")?;
    assert!(log.contains("can't fork"), "forks fail at the limit: {log}");

    let data = cluster.data[0].clone();
    let dir = wait_until("the container's pids cgroup", WAIT, || {
        pids_dir(&data, "bomb")
    })?;
    assert_eq!(read_number(&dir.join("pids.max"))?, 64, "{}", dir.display());
    let current = read_number(&dir.join("pids.current"))?;
    assert!(
        (50..=64).contains(&current),
        "the loop filled the cgroup up to its limit and no further: {current} processes"
    );

    // The agent is unharmed: another pod runs to its end and the first still runs.
    cli.apply_yaml(&pod("after", &cluster.busybox, "echo still serving", ""))?;
    wait_pod(
        &mut cluster,
        "after",
        "another pod to complete",
        phase_is("Succeeded"),
    )?;
    assert_eq!(cli.ok(&["logs", "after"])?.trim(), "still serving");
    let bomb = cli.json(&["get", "pod", "bomb"])?;
    assert_eq!(bomb["status"]["phase"], "Running", "{bomb}");
    Ok(())
}

#[test]
fn a_container_sees_neither_the_nodes_processes_nor_its_files_nor_another_pods(
) -> anyhow::Result<()> {
    let mut cluster = LinuxCluster::start(&[("node", LINUX)])?;
    let cli = cluster.cli();
    // Files on the node: one in the test's directory, one in the node's /tmp.
    let in_test_dir = cluster.tmp.path().join("node-marker");
    std::fs::write(&in_test_dir, "node secret")?;
    let in_node_tmp = tempfile::Builder::new()
        .prefix("skiff-node-marker")
        .tempfile_in("/tmp")?;
    // Another pod writes a file into its own root filesystem and keeps running.
    let writer = "echo secret > /other-secret && echo written; exec sleep 3600";
    cli.apply_yaml(&pod("other", &cluster.busybox, writer, ""))?;
    wait_log(&cli, "other", "written")?;

    let markers = [
        in_test_dir.display().to_string(),
        in_node_tmp.path().display().to_string(),
        "/other-secret".to_string(),
    ];
    let look = format!(
        "ps -o pid,comm; for f in {}; do if test -e $f; then echo visible $f; \
         else echo hidden $f; fi; done",
        markers.join(" ")
    );
    cli.apply_yaml(&pod("looker", &cluster.busybox, &look, ""))?;
    wait_pod(
        &mut cluster,
        "looker",
        "the looking pod to end",
        phase_is("Succeeded"),
    )?;
    let log = cli.ok(&["logs", "looker"])?;

    // `ps` reads /proc: only the pod's shell and `ps` itself, not the agent, not its shims,
    // not the other pod's sleep.
    let processes: Vec<(u32, &str)> = log
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            Some((pid, fields.next().unwrap_or_default()))
        })
        .collect();
    assert!(
        processes
            .iter()
            .any(|&(pid, comm)| pid == 1 && comm == "sh"),
        "the pod's shell is pid 1: {log}"
    );
    assert!(
        processes
            .iter()
            .all(|(_, comm)| matches!(*comm, "sh" | "ps")),
        "only its own processes: {log}"
    );
    for marker in &markers {
        assert!(log.contains(&format!("hidden {marker}")), "{marker}: {log}");
    }
    assert!(!log.contains("visible"), "{log}");
    Ok(())
}

#[test]
fn registry_pods_go_to_the_node_with_the_linux_runtime() -> anyhow::Result<()> {
    let wasm_only: &[&str] = &["--runtimes", "wasm"];
    let mut cluster = LinuxCluster::start(&[("wasm-only", wasm_only), ("both", LINUX)])?;
    let cli = cluster.cli();
    // Two class-less replicas: least-allocated scoring alone would put one on each node.
    let deployment = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: busybox}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: busybox}}}}
  template:
    metadata: {{labels: {{app: busybox}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: busybox
        image: "{}"
        command: ["sleep", "3600"]
"#,
        cluster.busybox
    );
    cli.apply_yaml(&deployment)?;
    let pods = wait_until("both replicas Running", WAIT, || {
        cluster.check_agents()?;
        let pods = cli.items(&["get", "pods", "-l", "app=busybox"])?;
        let running = pods.iter().all(|p| p["status"]["phase"] == "Running");
        Ok((pods.len() == 2 && running).then_some(pods))
    })?;
    for pod in &pods {
        assert_eq!(pod["spec"]["nodeName"], "both", "{pod}");
    }

    // Bound past the scheduler to the node without the Linux runtime: it waits, saying why.
    let stray = pod("stray", &cluster.busybox, "true", "").replacen(
        "spec:\n",
        "spec:\n  nodeName: wasm-only\n",
        1,
    );
    cli.apply_yaml(&stray)?;
    let pod = wait_pod(&mut cluster, "stray", "the stray pod to wait", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "RuntimeUnavailable"
    })?;
    let message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("is a Linux container image")
            && message.contains("no Linux container runtime"),
        "{message}"
    );
    let described = cli.ok(&["describe", "pod", "stray"])?;
    assert!(
        described.contains("RuntimeUnavailable") && described.contains("FailedCreatePodSandBox"),
        "{described}"
    );
    Ok(())
}
