//! Cluster DNS through the real binary: a control plane and two agents in `--pod-network
//! bridge` mode (so the node proxy and node-local DNS are on by default), each on a host of
//! its own (network namespaces on a bridge). tcp-echo runs on node a behind a ClusterIP
//! Service `echo` and a headless Service `echo-pods`; net-client pods on node b name them by
//! their short names: the pod's resolver walks its search list to the node-local DNS on
//! 10.43.0.10, which answers `echo` with the ClusterIP and `echo-pods` with tcp-echo's pod IP,
//! and both reach tcp-echo across the nodes and print its reply. Needs root and the built
//! guests (scripts/build-guests.sh).

use std::time::Duration;

use anyhow::Context;
use skiff_e2e::{start_agents_on, start_server_on, wait_until, wasip2_guests, Network, Skiff};

const WAIT: Duration = Duration::from_secs(90);
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_B: usize = 2;

fn manifests(release: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: tcp-echo, labels: {{app: tcp-echo}}}}
spec:
  nodeName: a
  terminationGracePeriodSeconds: 0
  containers:
  - name: tcp-echo
    image: "file:{release}/tcp-echo.wasm"
    args: ["7000"]
    ports: [{{name: echo, containerPort: 7000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: tcp-echo}}
  ports: [{{name: echo, port: 7000, targetPort: 7000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-pods}}
spec:
  clusterIP: None
  selector: {{app: tcp-echo}}
  ports: [{{name: echo, port: 7000}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: by-service}}
spec:
  nodeName: b
  terminationGracePeriodSeconds: 0
  containers:
  - name: net-client
    image: "file:{release}/net-client.wasm"
    args: ["echo:7000", "via-service"]
---
apiVersion: v1
kind: Pod
metadata: {{name: by-pod}}
spec:
  nodeName: b
  terminationGracePeriodSeconds: 0
  containers:
  - name: net-client
    image: "file:{release}/net-client.wasm"
    args: ["echo-pods.default.svc.cluster.local:7000", "via-headless"]
"#
    )
}

/// The first line of pod `name`'s log that says a reply came, once there is one.
fn replied(cli: &Skiff, name: &str) -> anyhow::Result<Option<String>> {
    let Ok(log) = cli.ok(&["logs", name]) else {
        return Ok(None);
    };
    Ok(log
        .lines()
        .find(|l| l.contains("replied"))
        .map(str::to_string))
}

#[test]
fn wasm_pods_reach_services_and_headless_pods_by_name_across_nodes() -> anyhow::Result<()> {
    let release = wasip2_guests(&["tcp-echo.wasm", "net-client.wasm"])?;
    let release = release.display().to_string();
    let tmp = tempfile::tempdir()?;
    let network = Network::create(3)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let agent_flags = ["--allow-image-dir", &release, "--pod-network", "bridge"];
    let mut agents = start_agents_on(
        &network,
        &[(HOST_A, "a"), (HOST_B, "b")],
        &url,
        tmp.path(),
        &agent_flags,
    )?;
    let dns = wait_until("the kube-dns Service", WAIT, || {
        Ok(cli
            .json(&["get", "service", "kube-dns", "-n", "kube-system"])
            .ok())
    })?;
    assert_eq!(dns["spec"]["clusterIP"], "10.43.0.10", "{dns}");

    cli.apply_yaml(&manifests(&release))?;
    let echo_ip = wait_until("tcp-echo to run with an IP", WAIT, || {
        let pod = cli.json(&["get", "pod", "tcp-echo"])?;
        Ok(pod["status"]["podIP"]
            .as_str()
            .filter(|_| pod["status"]["phase"] == "Running")
            .map(str::to_string))
    })?;
    let service = cli.json(&["get", "service", "echo"])?;
    let cluster_ip = service["spec"]["clusterIP"]
        .as_str()
        .context("echo's ClusterIP")?
        .to_string();

    let mut last = String::new();
    let (by_service, by_pod) = wait_until("both clients to get a reply", WAIT, || {
        for agent in &mut agents {
            agent.check_running()?;
        }
        last = cli.ok(&["logs", "by-service"]).unwrap_or_default()
            + &cli.ok(&["logs", "by-pod"]).unwrap_or_default();
        Ok(replied(&cli, "by-service")?.zip(replied(&cli, "by-pod")?))
    })
    .with_context(|| last.clone())?;
    assert_eq!(
        by_service,
        format!("net-client: echo ({cluster_ip}) replied \"via-service\"")
    );
    assert_eq!(
        by_pod,
        format!(
            "net-client: echo-pods.default.svc.cluster.local ({echo_ip}) replied \"via-headless\""
        )
    );
    Ok(())
}
