//! Pod addresses across nodes, through the real binary: a control plane and two agents, each
//! on a host of its own (network namespaces on a bridge), the agents in `--pod-network bridge`
//! mode. Each node gets a pod CIDR, each pod an address of its node's CIDR (shown by
//! `get pods -o wide`), and a pod on one node answers pings from the other host (its
//! namespace's kernel answers; the guest needs no socket). A deleted pod gives back its
//! address and its veth; a deleted node takes the other node's route to its CIDR with it.
//! Everything lives in namespaces the test made and removes, also on failure. Needs root.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use skiff_e2e::{start_agent_on, start_server_on, wait_until, Network, Skiff};

/// Sleeps an hour in one host call: a pod that runs and costs nothing.
const SLEEP_AN_HOUR: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;

const WAIT: Duration = Duration::from_secs(30);
/// The hosts: the control plane's and the two nodes'.
const SERVER: usize = 0;
const HOST_A: usize = 1;
const HOST_B: usize = 2;

/// A pod of the sleeping guest bound straight to `node`, stopped at once when deleted.
fn pod(name: &str, node: &str, guest: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  \
         terminationGracePeriodSeconds: 0\n  containers:\n  - {{name: main, image: \"file:{guest}\"}}\n"
    )
}

/// `ip netns exec NS ARGS...` on `host`: whether it succeeded, and its output.
fn on_host(network: &Network, host: usize, args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new("ip")
        .args(["netns", "exec", &network.namespace(host)])
        .args(args)
        .output()
        .with_context(|| format!("running {args:?}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text))
}

fn pod_cidr(cli: &Skiff, node: &str) -> anyhow::Result<Option<ipnet::Ipv4Net>> {
    let node = cli.json(&["get", "node", node])?;
    Ok(node["spec"]["podCIDR"]
        .as_str()
        .and_then(|c| c.parse().ok()))
}

/// Pod `name`'s IP once it runs.
fn running_ip(cli: &Skiff, name: &str) -> anyhow::Result<std::net::Ipv4Addr> {
    wait_until(&format!("pod {name} to run with an IP"), WAIT, || {
        let pod = cli.json(&["get", "pod", name])?;
        let running = pod["status"]["phase"] == "Running";
        Ok(pod["status"]["podIP"]
            .as_str()
            .filter(|_| running)
            .and_then(|ip| ip.parse().ok()))
    })
}

/// The network namespaces process `pid` holds open other than its own: its pods'.
fn pod_namespaces(pid: u32) -> anyhow::Result<Vec<String>> {
    let own = std::fs::read_link(format!("/proc/{pid}/ns/net"))?;
    let mut found = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let path = fd?.path();
        let Ok(target) = std::fs::read_link(&path) else {
            continue;
        };
        if target.to_string_lossy().starts_with("net:[") && target != own {
            found.push(path.display().to_string());
        }
    }
    Ok(found)
}

fn uid_of(cli: &Skiff, name: &str) -> anyhow::Result<String> {
    let pod: Value = cli.json(&["get", "pod", name])?;
    pod["metadata"]["uid"]
        .as_str()
        .map(str::to_string)
        .context("a pod uid")
}

#[test]
fn pods_get_addresses_of_their_nodes_cidr_and_reach_each_other_across_nodes() -> anyhow::Result<()>
{
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    std::fs::create_dir(&guests)?;
    let guest = guests.join("sleep.wasm");
    std::fs::write(&guest, wat::parse_str(SLEEP_AN_HOUR)?)?;
    let guest = guest.display().to_string();
    let guests = guests.display().to_string();

    // Dropped last: every process in its namespaces is gone by then.
    let network = Network::create(3)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let agent_flags = ["--allow-image-dir", &guests, "--pod-network", "bridge"];
    let mut agent_a = start_agent_on(
        &network,
        HOST_A,
        &url,
        "a",
        &tmp.path().join("a"),
        &agent_flags,
    )?;
    let mut agent_b = start_agent_on(
        &network,
        HOST_B,
        &url,
        "b",
        &tmp.path().join("b"),
        &agent_flags,
    )?;
    let (cidr_a, cidr_b) = wait_until("both nodes to get a pod CIDR", WAIT, || {
        agent_a.check_running()?;
        agent_b.check_running()?;
        Ok(pod_cidr(&cli, "a")?.zip(pod_cidr(&cli, "b")?))
    })?;
    assert_ne!(cidr_a, cidr_b);
    let describe = cli.ok(&["describe", "node", "a"])?;
    assert!(
        describe.contains(&format!("PodCIDR:      {cidr_a}")),
        "{describe}"
    );

    for (name, node) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        cli.apply_yaml(&pod(name, node, &guest))?;
    }
    let a1 = running_ip(&cli, "a1")?;
    let a2 = running_ip(&cli, "a2")?;
    let b1 = running_ip(&cli, "b1")?;
    assert!(
        cidr_a.contains(&a1) && cidr_a.contains(&a2),
        "{a1} {a2} in {cidr_a}"
    );
    assert_ne!(a1, a2, "two pods of one node share no address");
    assert!(cidr_b.contains(&b1), "{b1} in {cidr_b}");
    let wide = cli.ok(&["get", "pods", "-o", "wide"])?;
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ]
    );
    let row = wide
        .lines()
        .find(|l| l.starts_with("b1 "))
        .context("b1's row")?;
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[5..],
        [b1.to_string().as_str(), "b", "<none>", "<none>"],
        "{wide}"
    );

    // Across nodes both ways, through the host-gw routes.
    for (from, to) in [(HOST_B, a1), (HOST_A, b1), (HOST_B, a2)] {
        let ip = to.to_string();
        wait_until(
            &format!("{ip} to answer pings from host {from}"),
            WAIT,
            || {
                let (ok, _) = on_host(&network, from, &["ping", "-c1", "-W2", &ip])?;
                Ok(ok.then_some(()))
            },
        )?;
    }
    let (_, route) = on_host(
        &network,
        HOST_B,
        &["ip", "route", "show", &cidr_a.to_string()],
    )?;
    assert!(
        route.contains(&format!("via {}", network.address(HOST_A))),
        "{route}"
    );

    // A deleted pod gives back its veth; its address is not the next one given (addresses go
    // round the CIDR, so a stale neighbour entry cannot make a new pod unreachable); the /30
    // test below shows the address released.
    let veth = format!("veth{}", &uid_of(&cli, "a1")?.replace('-', "")[..11]);
    let (_, links) = on_host(&network, HOST_A, &["ip", "-o", "link", "show"])?;
    assert!(links.contains(&veth), "{veth} in {links}");
    cli.ok(&["delete", "pod", "a1"])?;
    wait_until("a1's veth to go", WAIT, || {
        let (_, links) = on_host(&network, HOST_A, &["ip", "-o", "link", "show"])?;
        Ok((!links.contains(&veth)).then_some(()))
    })?;
    wait_until("a1 to be gone", WAIT, || {
        let get = cli.run(&["get", "pod", "a1"])?;
        Ok((!get.success && get.stderr.contains("not found")).then_some(()))
    })?;
    cli.apply_yaml(&pod("a3", "a", &guest))?;
    assert_ne!(
        running_ip(&cli, "a3")?,
        a1,
        "a1's address is not reused at once"
    );

    // A pod reaches beyond the cluster CIDR masqueraded: the test's own namespace, which has
    // no route to any pod CIDR, answers it.
    let pod_netns = pod_namespaces(agent_a.pid().context("agent a's pid")?)?;
    anyhow::ensure!(!pod_netns.is_empty(), "agent a holds no pod namespace");
    let outside = network.gateway().to_string();
    wait_until(&format!("a pod to reach {outside}"), WAIT, || {
        let ping = Command::new("nsenter")
            .arg(format!("--net={}", pod_netns[0]))
            .args(["ping", "-c1", "-W2", &outside])
            .output()?;
        Ok(ping.status.success().then_some(()))
    })?;

    // A hostNetwork pod shares its node's network.
    let host_pod =
        pod("h", "b", &guest).replace("  nodeName: b\n", "  nodeName: b\n  hostNetwork: true\n");
    cli.apply_yaml(&host_pod)?;
    assert_eq!(running_ip(&cli, "h")?, network.address(HOST_B));

    // An agent killed with -9 leaves no pod namespace or veth behind (only its bridge).
    agent_a.kill9()?;
    wait_until("a's veths to go with its pods' namespaces", WAIT, || {
        let (_, links) = on_host(&network, HOST_A, &["ip", "-o", "link", "show"])?;
        Ok((!links.contains("veth")).then_some(()))
    })?;

    // Node a goes: b's route to its CIDR goes with it.
    cli.ok(&["delete", "node", "a"])?;
    wait_until("b's route to a's pod CIDR to go", WAIT, || {
        let (_, route) = on_host(
            &network,
            HOST_B,
            &["ip", "route", "show", &cidr_a.to_string()],
        )?;
        Ok(route.trim().is_empty().then_some(()))
    })?;
    agent_b.check_running()?;
    Ok(())
}

#[test]
fn a_host_network_node_reports_its_own_address_for_pods() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let network = Network::create(2)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let guests = tmp.path().join("guests");
    std::fs::create_dir(&guests)?;
    let guest = guests.join("sleep.wasm");
    std::fs::write(&guest, wat::parse_str(SLEEP_AN_HOUR)?)?;
    let dir = guests.display().to_string();
    let mut agent = start_agent_on(
        &network,
        1,
        &url,
        "h",
        &tmp.path().join("h"),
        &["--allow-image-dir", &dir, "--pod-network", "host"],
    )?;
    cli.apply_yaml(&pod("p", "h", &guest.display().to_string()))?;
    let ip = running_ip(&cli, "p")?;
    agent.check_running()?;
    assert_eq!(ip, network.address(1), "the pod reports the node's address");
    let (_, links) = on_host(&network, 1, &["ip", "-o", "link", "show"])?;
    assert!(!links.contains("skiff0"), "no bridge in host mode: {links}");
    Ok(())
}

#[test]
fn a_full_cidr_range_and_a_full_node_cidr_wait_with_events_until_space_frees_up(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    std::fs::create_dir(&guests)?;
    let guest = guests.join("sleep.wasm");
    std::fs::write(&guest, wat::parse_str(SLEEP_AN_HOUR)?)?;
    let guest = guest.display().to_string();
    let guests = guests.display().to_string();

    let network = Network::create(3)?;
    // One /30 block in all, and one pod address in it (.0 network, .1 gateway, .3 broadcast).
    let range = [
        "--cluster-cidr",
        "10.42.0.0/30",
        "--node-cidr-mask-size",
        "30",
    ];
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &range)?;
    let cli = Skiff::new(url.clone());
    let flags = ["--allow-image-dir", &guests, "--pod-network", "bridge"];
    let mut agent_a = start_agent_on(&network, HOST_A, &url, "a", &tmp.path().join("a"), &flags)?;
    wait_until("a to get the only block", WAIT, || {
        agent_a.check_running()?;
        pod_cidr(&cli, "a")
    })?;
    let mut agent_b = start_agent_on(&network, HOST_B, &url, "b", &tmp.path().join("b"), &flags)?;
    wait_until("b to be told the range is full", WAIT, || {
        agent_b.check_running()?;
        let described = cli.ok(&["describe", "node", "b"])?;
        Ok(described.contains("CIDRNotAvailable").then_some(()))
    })?;
    assert_eq!(pod_cidr(&cli, "b")?, None);

    cli.apply_yaml(&pod("first", "a", &guest))?;
    let first = running_ip(&cli, "first")?;
    assert_eq!(first.to_string(), "10.42.0.2");
    cli.apply_yaml(&pod("second", "a", &guest))?;
    wait_until("second to wait for an address", WAIT, || {
        let described = cli.ok(&["describe", "pod", "second"])?;
        Ok(described
            .contains("no IP address left in the node's pod CIDR 10.42.0.0/30")
            .then_some(()))
    })?;
    let second = cli.json(&["get", "pod", "second"])?;
    assert_ne!(second["status"]["phase"], "Running");

    cli.ok(&["delete", "pod", "first"])?;
    assert_eq!(
        running_ip(&cli, "second")?,
        first,
        "first's address, released"
    );
    agent_a.check_running()?;
    Ok(())
}
