//! The agent-opened tunnel end to end: agents started with `--kubelet-listen none` have no
//! port open, and the API server reaches them through the tunnel each keeps open to it.
//! `skiff logs`, `skiff logs -f` and `skiff exec` (refused by the agent for a Wasm pod; run in
//! a Linux pod) work; after a server restart the agent opens its tunnel again and logs work
//! once more. In a three-member control plane the agent keeps a tunnel to every member, so each
//! one serves its logs, also when it was given one member alone: it learns the others from
//! the `kubernetes` Service's endpoints, which drop a stopped member once its lease expires.
//! (A tunnel without a valid join token is refused:
//! control-plane/tests/integration/node_tunnel.rs.)

use std::collections::BTreeSet;
use std::time::Duration;

use skiff_e2e::linux::LinuxCluster;
use skiff_e2e::{example_guest, start_agent, wait_until, Cluster, DevServer, Skiff};

const WAIT: Duration = Duration::from_secs(60);

fn ticker_pod(guest: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: ticker}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: ticker
    image: "file:{guest}"
    env:
    - {{name: MESSAGE, value: "through the tunnel"}}
"#
    )
}

/// The ticker's log as `skiff logs ARGS ticker` gives it, once it says something.
fn ticks(cli: &Skiff, args: &[&str]) -> anyhow::Result<Option<String>> {
    let mut command = vec!["logs"];
    command.extend_from_slice(args);
    command.push("ticker");
    let out = cli.run(&command)?;
    Ok((out.success && out.stdout.contains("through the tunnel")).then_some(out.stdout))
}

#[test]
fn a_node_without_a_listener_is_reached_through_its_tunnel_across_a_server_restart(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let token = server.join_token()?;
    let mut agent = start_agent(
        &server.url(),
        &token,
        "hidden",
        &tmp.path().join("hidden"),
        &["--kubelet-listen", "none"],
    )?;
    let cli = server.cli();
    wait_until("the node Ready", WAIT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;
    // The node publishes no endpoint to dial: only its tunnel reaches it.
    let node = cli.json(&["get", "node", "hidden"])?;
    assert_eq!(
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], 0,
        "{node}"
    );

    // A lone dev server is the `kubernetes` Service's one endpoint.
    let itself = BTreeSet::from([server.url().replace("https://", "")]);
    wait_until("the dev server in the kubernetes endpoints", WAIT, || {
        Ok((listed_servers(&cli)? == itself).then_some(()))
    })?;

    cli.apply_yaml(&ticker_pod(&example_guest("ticker")?.display().to_string()))?;
    let logs = wait_until("the ticker's log", WAIT, || {
        agent.check_running()?;
        ticks(&cli, &[])
    })?;
    assert!(logs.contains("tick 0"), "{logs}");
    // A follow streams new lines as the guest prints them (a second apart), ending at the
    // byte limit.
    let followed = ticks(&cli, &["-f", "--tail", "0", "--limit-bytes", "100"])?
        .ok_or_else(|| anyhow::anyhow!("`skiff logs -f` gave nothing"))?;
    assert!(followed.len() >= 100, "{followed}");
    assert!(!followed.contains("tick 0 "), "only new lines: {followed}");
    // Exec goes through the tunnel too: the agent itself refuses a Wasm container.
    let exec = cli.run(&["exec", "ticker", "--", "sh"])?;
    assert!(
        exec.stderr
            .contains("exec is not supported for Wasm containers"),
        "{exec:?}"
    );

    // The server is killed and restarts: the agent opens its tunnel again, and logs work once
    // more.
    server.kill9()?;
    server.restart()?;
    wait_until("logs through the tunnel after a restart", WAIT, || {
        agent.check_running()?;
        ticks(&cli, &["--tail", "1"])
    })?;
    assert!(
        agent.log().contains("tunnel to the API server open"),
        "{}",
        agent.log()
    );
    Ok(())
}

#[test]
fn exec_and_logs_reach_a_linux_pod_on_a_node_without_a_listener() -> anyhow::Result<()> {
    let cluster = LinuxCluster::start(&[(
        "hidden",
        &["--runtimes", "wasm,linux", "--kubelet-listen", "none"],
    )])?;
    let cli = cluster.cli();
    cli.apply_yaml(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: busybox
    image: "{}"
    command: ["sh", "-c", "echo started; sleep 3600"]
"#,
        cluster.busybox
    ))?;
    wait_until("the pod Running", Duration::from_secs(90), || {
        let pod = cli.json(&["get", "pod", "shell"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;
    let out = cli.run(&["exec", "shell", "--", "sh", "-c", "echo hi; exit 3"])?;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "hi\n");
    let piped = cli.run_with_stdin(&["exec", "-i", "shell", "--", "cat"], Some("via stdin\n"))?;
    assert_eq!(piped.stdout, "via stdin\n", "{piped:?}");
    let logs = wait_until("the pod's log", WAIT, || {
        let out = cli.run(&["logs", "shell"])?;
        Ok(out.stdout.contains("started").then_some(out.stdout))
    })?;
    assert_eq!(logs, "started\n");
    Ok(())
}

#[test]
fn every_member_of_a_control_plane_reaches_a_node_through_its_own_tunnel() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cluster = Cluster::start(tmp.path(), 3, &[])?;
    let mut agent = cluster.join_agent(
        "hidden",
        &tmp.path().join("hidden"),
        &["--kubelet-listen", "none"],
    )?;
    let cli = cluster.cli();
    wait_until("the node Ready", WAIT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;
    cli.apply_yaml(&ticker_pod(&example_guest("ticker")?.display().to_string()))?;
    for member in &cluster.members {
        let one = Skiff::new(member.url());
        wait_until(
            &format!("the ticker's log from {}", member.name),
            WAIT,
            || {
                agent.check_running()?;
                ticks(&one, &["--tail", "1"])
            },
        )?;
    }
    Ok(())
}

/// `IP:PORT` of each server the `kubernetes` Service's EndpointSlices list.
fn listed_servers(cli: &Skiff) -> anyhow::Result<BTreeSet<String>> {
    let slices = cli.json(&[
        "get",
        "endpointslices",
        "-n",
        "default",
        "-l",
        "kubernetes.io/service-name=kubernetes",
    ])?;
    let mut servers = BTreeSet::new();
    for slice in slices["items"].as_array().into_iter().flatten() {
        let ports = slice["ports"].as_array().into_iter().flatten();
        for port in ports.filter_map(|p| p["port"].as_u64()) {
            for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
                for ip in endpoint["addresses"].as_array().into_iter().flatten() {
                    servers.insert(format!("{}:{port}", ip.as_str().unwrap_or_default()));
                }
            }
        }
    }
    Ok(servers)
}

/// The `IP:PORT` of members `indices`' API.
fn members_at(cluster: &Cluster, indices: &[usize]) -> BTreeSet<String> {
    indices
        .iter()
        .map(|&i| cluster.members[i].url().replace("https://", ""))
        .collect()
}

#[test]
fn an_agent_given_one_member_tunnels_to_every_member_the_kubernetes_endpoints_list(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(tmp.path(), 3, &["--apiserver-lease-seconds", "2"])?;
    let cli = cluster.cli();
    // Each member's lease puts it in the `kubernetes` Service's endpoints.
    let all = members_at(&cluster, &[0, 1, 2]);
    wait_until(
        "the three members in the kubernetes endpoints",
        WAIT,
        || Ok((listed_servers(&cli)? == all).then_some(())),
    )?;
    let leases = cli.json(&[
        "get",
        "leases",
        "-n",
        "kube-system",
        "-l",
        "apiserver.kubernetes.io/identity=kube-apiserver",
    ])?;
    assert_eq!(
        leases["items"].as_array().map(Vec::len),
        Some(3),
        "{leases}"
    );

    // The agent is given member 1 alone and has no listener: members 2 and 3 reach it only
    // through the tunnels it opens to the servers it learns from those endpoints.
    let token = cli.ok(&["token", "create"])?.trim().to_string();
    let mut agent = start_agent(
        &cluster.members[0].url(),
        &token,
        "hidden",
        &tmp.path().join("hidden"),
        &["--kubelet-listen", "none"],
    )?;
    wait_until("the node Ready", WAIT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;
    cli.apply_yaml(&ticker_pod(&example_guest("ticker")?.display().to_string()))?;
    for member in &cluster.members[1..] {
        let one = Skiff::new(member.url());
        wait_until(
            &format!("the ticker's log from {}", member.name),
            WAIT,
            || {
                agent.check_running()?;
                ticks(&one, &["--tail", "1"])
            },
        )?;
    }

    // A stopped member drops out once its lease expires, and the agent closes its tunnel.
    cluster.kill9(2)?;
    let left = members_at(&cluster, &[0, 1]);
    wait_until("the stopped member out of the endpoints", WAIT, || {
        Ok((listed_servers(&cli)? == left).then_some(()))
    })?;
    wait_until(
        "the agent to close the stopped member's tunnel",
        WAIT,
        || {
            agent.check_running()?;
            Ok(agent
                .log()
                .contains("left the kubernetes endpoints; closing its tunnel")
                .then_some(()))
        },
    )?;
    let second = Skiff::new(cluster.members[1].url());
    wait_until("the ticker's log from member 2 still", WAIT, || {
        agent.check_running()?;
        ticks(&second, &["--tail", "1"])
    })?;
    Ok(())
}
