//! `hostPort` through the real binary: a control plane and one agent in `--pod-network
//! bridge` mode, each on a host of its own (network namespaces on a bridge). An http-echo
//! Deployment asking for hostPort 8081 answers on NODE_IP:8081 from the control plane's host;
//! a second pod asking for the same port stays Pending with the scheduler's NodePorts
//! message; deleting the Deployment frees the port, and the second pod then runs and answers
//! there. A pod whose host port another program on the node holds runs with a Warning event
//! naming the port, and answers once the port is free. Everything lives in namespaces the
//! test made and removes, also on failure. Needs root, curl, python3 and the built guests
//! (scripts/build-guests.sh).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use skiff_e2e::{start_agent_on, start_server_on, wait_until, wasip2_guests, Network, Skiff};

const WAIT: Duration = Duration::from_secs(60);
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_PORT: u16 = 8081;
/// A port another program on the node holds first.
const HELD_PORT: u16 = 8082;
const UNSCHEDULABLE: &str =
    "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.";

/// An http-echo Deployment `name` of one replica whose port 8080 is hostPort `host_port`.
fn deployment(name: &str, guest: &str, host_port: u16) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: http-echo
        image: "file:{guest}"
        ports: [{{name: http, containerPort: 8080, hostPort: {host_port}}}]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
"#
    )
}

/// A bare http-echo pod `name` asking for hostPort `host_port`.
fn pod(name: &str, guest: &str, host_port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: http-echo
    image: "file:{guest}"
    ports: [{{containerPort: 8080, hostPort: {host_port}}}]
    env:
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
"#
    )
}

/// `curl` of `url` from `host`'s namespace: its exit code and output.
fn curl(network: &Network, host: usize, url: &str) -> anyhow::Result<(i32, String)> {
    let out = Command::new("ip")
        .args(["netns", "exec", &network.namespace(host)])
        .args(["curl", "-sS", "--max-time", "5", url])
        .output()
        .context("running curl (apt-get install curl)")?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.code().unwrap_or(-1), text))
}

/// Waits until `url` answers from `host` with an http-echo answer of a pod whose name starts
/// with `pod`; returns the answer.
fn answered_by(network: &Network, host: usize, url: &str, pod: &str) -> anyhow::Result<String> {
    let mut last = String::new();
    wait_until(&format!("{url} to be answered by {pod}"), WAIT, || {
        let (code, answer) = curl(network, host, url)?;
        last = answer.clone();
        let ours = answer.starts_with(&format!("pod {pod}"));
        Ok((code == 0 && ours).then_some(answer))
    })
    .with_context(|| format!("last answer: {last}"))
}

/// A TCP listener another program (python3) holds on `addr:port` in `host`'s namespace;
/// killed when dropped.
struct PortHolder(Child);

impl PortHolder {
    fn start(network: &Network, host: usize, port: u16) -> anyhow::Result<PortHolder> {
        let script = format!(
            "import socket, sys, time\ns = socket.socket()\ns.bind(({:?}, {port}))\ns.listen()\n\
             print('held', flush=True)\ntime.sleep(3600)\n",
            network.address(host).to_string()
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &network.namespace(host)])
            .args(["python3", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .context("running python3")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("python3's stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let holder = PortHolder(child);
        anyhow::ensure!(
            line.trim() == "held",
            "python3 did not hold the port: {line:?}"
        );
        Ok(holder)
    }
}

impl Drop for PortHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `PodScheduled` condition's message of pod `name`, if it is False.
fn unschedulable_message(cli: &Skiff, name: &str) -> anyhow::Result<Option<String>> {
    let pod = cli.json(&["get", "pod", name])?;
    Ok(pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
        .and_then(|c| c["message"].as_str())
        .map(str::to_string))
}

#[test]
fn host_ports_forward_to_their_pod_and_are_scheduled_once_per_node() -> anyhow::Result<()> {
    let release = wasip2_guests(&["http_echo.wasm"])?;
    let guest = release.join("http_echo.wasm").display().to_string();
    let tmp = tempfile::tempdir()?;
    // Dropped last: every process in its namespaces is gone by then.
    let network = Network::create(2)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let release = release.display().to_string();
    let agent_flags = ["--allow-image-dir", &release, "--pod-network", "bridge"];
    let mut agent = start_agent_on(
        &network,
        HOST_A,
        &url,
        "a",
        &tmp.path().join("a"),
        &agent_flags,
    )?;
    cli.wait_nodes_ready(1, WAIT)?;
    let node_url = |port: u16| format!("http://{}:{port}/", network.address(HOST_A));

    // The first Deployment's pod answers on the node's address at its host port.
    cli.apply_yaml(&deployment("first", &guest, HOST_PORT))?;
    let answer = answered_by(&network, SERVER, &node_url(HOST_PORT), "first-")?;
    agent.check_running()?;
    eprintln!("hostPort {HOST_PORT}: {answer}");

    // A second pod asking for the same port does not fit the only node.
    cli.apply_yaml(&pod("second", &guest, HOST_PORT))?;
    let message = wait_until("the second pod to be unschedulable", WAIT, || {
        unschedulable_message(&cli, "second")
    })?;
    assert_eq!(message, UNSCHEDULABLE);
    let second = cli.json(&["get", "pod", "second"])?;
    assert!(second["spec"]["nodeName"].is_null(), "{second}");
    assert_eq!(second["status"]["phase"], "Pending");

    // A port another program holds: the pod runs, with a Warning naming the port.
    let holder = PortHolder::start(&network, HOST_A, HELD_PORT)?;
    cli.apply_yaml(&pod("held", &guest, HELD_PORT))?;
    let event = wait_until("a FailedHostPort event for pod held", WAIT, || {
        let events = cli.items(&["get", "events"])?;
        Ok(events
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == "held")
            .find(|e| e["reason"] == "FailedHostPort" && e["type"] == "Warning")
            .and_then(|e| e["message"].as_str().map(str::to_string)))
    })?;
    assert!(
        event.contains(&format!("hostPort {HELD_PORT}/TCP")),
        "the event names the port: {event}"
    );
    wait_until("pod held to run regardless", WAIT, || {
        let pod = cli.json(&["get", "pod", "held"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;
    // Once the other program lets go, the agent's next try opens it.
    drop(holder);
    answered_by(&network, SERVER, &node_url(HELD_PORT), "held")?;

    // Deleting the first frees the port: the second is placed, runs and answers there.
    cli.ok(&["delete", "deployment", "first"])?;
    answered_by(&network, SERVER, &node_url(HOST_PORT), "second").with_context(|| {
        let pod = cli.ok(&["get", "pod", "second", "-o", "yaml"]);
        let events = cli.ok(&["get", "events"]);
        format!("pod second: {pod:?}\nevents: {events:?}")
    })?;
    let second = cli.json(&["get", "pod", "second"])?;
    assert_eq!(second["spec"]["nodeName"], "a");
    agent.check_running()?;
    Ok(())
}
