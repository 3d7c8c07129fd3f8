//! Linux pods end to end on real processes: the busybox test image (Debian's busybox-static)
//! pushed to Debian's docker-registry, a control plane and an agent with `--runtimes
//! wasm,linux`. A Deployment of the image by its registry reference runs, `skiff logs` shows
//! its output and `skiff get pods` shows it Running; the agent killed with `-9` and started
//! again on its data dir re-attaches: the container keeps its process and restart count, the
//! pod stays Running and its logs come through the new agent; deleting the Deployment ends the container
//! and its shim. On `--pod-network bridge` agents in network namespaces, a busybox pod fetches
//! the Wasm http-echo pod on the other node through its Service, by the Service's cluster DNS
//! name. Needs root, cgroups, busybox-static and the built guests; leaves no process behind
//! when it fails.

use std::time::Duration;

use anyhow::Context;
use skiff_e2e::linux::{alive, push_busybox, started};
use skiff_e2e::{
    start_agent, start_agent_on, start_server_on, wait_until, wasip2_guests, DevServer, Network,
    Registry, Skiff,
};
use skiff_test_support::busybox::Teardown;

const WAIT: Duration = Duration::from_secs(90);
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_B: usize = 2;

fn deployment(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: busybox}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: busybox}}}}
  template:
    metadata: {{labels: {{app: busybox}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: busybox
        image: "{image}"
        command: ["sh", "-c", "echo hello from busybox; exec sleep 3600"]
"#
    )
}

/// The busybox pod's name, container ID and restart count once it is Running and ready.
fn running(cli: &Skiff) -> anyhow::Result<Option<(String, String, u64)>> {
    let pods = cli.items(&["get", "pods", "-l", "app=busybox"])?;
    let [pod] = &pods[..] else {
        return Ok(None);
    };
    let status = &pod["status"]["containerStatuses"][0];
    if pod["status"]["phase"] != "Running" || status["ready"] != true {
        return Ok(None);
    }
    Ok(Some((
        pod["metadata"]["name"].as_str().unwrap_or_default().into(),
        status["containerID"].as_str().unwrap_or_default().into(),
        status["restartCount"].as_u64().unwrap_or_default(),
    )))
}

#[test]
fn busybox_deployment_runs_logs_survives_an_agent_restart_and_stops() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let registry = Registry::start(tmp.path())?;
    let reference = push_busybox(&registry)?;

    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let token = server.join_token()?;
    let data = tmp.path().join("node");
    let _teardown = Teardown::of_agent(&data, Skiff::locate());
    let mut agent = start_agent(
        &server.url(),
        &token,
        "node",
        &data,
        &["--runtimes", "wasm,linux"],
    )?;
    let cli = server.cli();
    wait_until("the node Ready", WAIT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;

    cli.apply_yaml(&deployment(&reference))?;
    let (pod, container, restarts) = wait_until("the busybox pod Running", WAIT, || {
        agent.check_running()?;
        running(&cli)
    })?;
    let logs = wait_until("the pod's output", WAIT, || {
        let log = cli.ok(&["logs", &pod])?;
        Ok(log.contains("hello from busybox").then_some(log))
    })?;
    assert_eq!(logs.trim(), "hello from busybox");
    let table = cli.ok(&["get", "pods"])?;
    let row = table
        .lines()
        .find(|l| l.starts_with(&pod))
        .unwrap_or_default();
    assert!(row.contains("Running") && row.contains("1/1"), "{table}");
    let pids = started(&data)?;
    let [(shim, pid)] = pids[..] else {
        anyhow::bail!("one container started: {pids:?}");
    };
    assert!(
        alive(shim) && alive(pid),
        "shim {shim} and container {pid} run"
    );

    // The agent dies and comes back on the same data dir: it re-attaches to the container.
    agent.kill9()?;
    assert!(alive(pid), "the container outlives its agent");
    agent.restart()?;
    wait_until("the agent to re-attach to the pod's sandbox", WAIT, || {
        agent.check_running()?;
        Ok(agent
            .log()
            .contains("re-attached to a pod sandbox")
            .then_some(()))
    })?;
    // Logs come through the new agent's endpoint, from the same container.
    let logs = wait_until("the pod's output through the new agent", WAIT, || {
        Ok(cli.ok(&["logs", &pod]).ok())
    })?;
    assert_eq!(logs.trim(), "hello from busybox");
    assert_eq!(
        running(&cli)?,
        Some((pod.clone(), container, restarts)),
        "same container, no restart"
    );
    assert_eq!(started(&data)?, pids, "the same shim and process");
    assert!(alive(shim) && alive(pid));

    // Deleting the Deployment stops the container and its shim.
    cli.ok(&["delete", "deployment", "busybox"])?;
    wait_until("the pod gone", WAIT, || {
        Ok(cli
            .items(&["get", "pods", "-l", "app=busybox"])?
            .is_empty()
            .then_some(()))
    })?;
    wait_until("the container and its shim gone", WAIT, || {
        Ok((!alive(shim) && !alive(pid)).then_some(()))
    })?;
    Ok(())
}

/// http-echo (Wasm) on node a behind the Service `http-echo`, and a busybox pod on node b that
/// fetches it by the Service's name until it answers.
fn cross_runtime_manifests(guest: &str, busybox: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: http-echo, labels: {{app: http-echo}}}}
spec:
  nodeName: a
  terminationGracePeriodSeconds: 0
  containers:
  - name: http-echo
    image: "file:{guest}"
    ports: [{{name: http, containerPort: 8080}}]
    env:
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: http-echo}}
spec:
  selector: {{app: http-echo}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: fetch}}
spec:
  nodeName: b
  terminationGracePeriodSeconds: 0
  containers:
  - name: busybox
    image: "{busybox}"
    command:
    - sh
    - -c
    - until wget -qO- http://http-echo.default.svc.cluster.local/from-busybox; do sleep 1; done; exec sleep 3600
"#
    )
}

#[test]
fn a_busybox_pod_reaches_a_wasm_pod_through_a_service_by_name() -> anyhow::Result<()> {
    let release = wasip2_guests(&["http_echo.wasm"])?;
    let guest = release.join("http_echo.wasm");
    let tmp = tempfile::tempdir()?;
    let network = Network::create(3)?;
    // The registry listens on the bridge's address, which the hosts' namespaces reach.
    let registry = Registry::start_on(tmp.path(), network.gateway().into())?;
    let busybox = push_busybox(&registry)?;

    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let host = registry.host();
    let release = release.display().to_string();
    let agent_flags = [
        "--allow-image-dir",
        &release,
        "--pod-network",
        "bridge",
        "--runtimes",
        "wasm,linux",
        "--insecure-registry",
        &host,
    ];
    // Dropped after the agents (declared before them).
    let mut teardowns = Vec::new();
    let mut agents = Vec::new();
    for (host, node) in [(HOST_A, "a"), (HOST_B, "b")] {
        let dir = tmp.path().join(node);
        teardowns.push(Teardown::of_agent(&dir, Skiff::locate()));
        agents.push(start_agent_on(
            &network,
            host,
            &url,
            node,
            &dir,
            &agent_flags,
        )?);
    }
    cli.apply_yaml(&cross_runtime_manifests(
        &guest.display().to_string(),
        &busybox,
    ))?;
    let mut last = String::new();
    wait_until(
        "busybox to fetch http-echo through the Service",
        WAIT,
        || {
            for agent in &mut agents {
                agent.check_running()?;
            }
            last = cli.ok(&["logs", "fetch"]).unwrap_or_default();
            Ok(last
                .contains("pod http-echo: GET /from-busybox")
                .then_some(()))
        },
    )
    .with_context(|| {
        let pods = cli.ok(&["get", "pods", "-o", "wide"]).unwrap_or_default();
        format!("fetch's log: {last}\n{pods}")
    })?;
    Ok(())
}
