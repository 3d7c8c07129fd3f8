//! UDP Services through the node proxy of the real binary: a control plane and an agent in
//! `--pod-network bridge` mode, each on a host of its own; the backend is a UDP echo in the
//! test process, on the bridge's address, registered by hand in a v1 Endpoints of a Service
//! without a selector (as Kubernetes allows), which the EndpointSlice mirroring controller
//! copies into the slice the proxy reads. Datagrams to the NodePort (from the test's
//! namespace) and to the ClusterIP (from the agent's host) come back echoed, and from the
//! address they were sent to. Needs root and python3 (the client inside the host's namespace).

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use skiff_e2e::{start_agent_on, start_server_on, wait_until, Network, Skiff};

const WAIT: Duration = Duration::from_secs(60);
const SERVER: usize = 0;
const HOST_A: usize = 1;

/// Echoes every datagram on `socket` back with an `echo:` prefix, until the test ends.
fn serve_echo(socket: UdpSocket) {
    std::thread::spawn(move || {
        let mut buf = [0; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let answer = [b"echo:", &buf[..n]].concat();
            let _ = socket.send_to(&answer, from);
        }
    });
}

fn manifests(echo: SocketAddr) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  type: NodePort
  ports:
  - {{name: echo, port: 53, protocol: UDP}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: echo}}
subsets:
- addresses: [{{ip: "{ip}"}}]
  ports: [{{name: echo, port: {port}, protocol: UDP}}]
"#,
        ip = echo.ip(),
        port = echo.port(),
    )
}

/// One datagram to `to` from the test's namespace: the answer, if one came from `to`.
fn ask(to: SocketAddr, text: &str) -> anyhow::Result<Option<String>> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    socket.send_to(text.as_bytes(), to)?;
    let mut buf = [0; 1500];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) if from == to => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Ok(_) | Err(_) => Ok(None),
    }
}

/// One datagram to `to` from `host`'s namespace (with python3): the answer, if one came back.
fn ask_from(
    network: &Network,
    host: usize,
    to: SocketAddr,
    text: &str,
) -> anyhow::Result<Option<String>> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(0.5)\n\
         s.sendto({text:?}.encode(), ({ip:?}, {port}))\n\
         try:\n    data, peer = s.recvfrom(1500)\n    print(peer[0], peer[1], data.decode())\n\
         except socket.timeout:\n    pass\n",
        ip = to.ip().to_string(),
        port = to.port(),
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &network.namespace(host),
            "python3",
            "-c",
            &script,
        ])
        .output()
        .context("running python3 in the host's namespace")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().next() else {
        return Ok(None);
    };
    let mut parts = line.splitn(3, ' ');
    let from = format!(
        "{}:{}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    anyhow::ensure!(
        from == to.to_string(),
        "the answer came from {from}, not {to}"
    );
    Ok(parts.next().map(str::to_string))
}

#[test]
fn udp_services_answer_on_the_cluster_ip_and_the_node_port() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let network = Network::create(2)?;
    let echo = UdpSocket::bind((network.gateway(), 0))?;
    let echo_addr = echo.local_addr()?;
    serve_echo(echo);
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let mut agent = start_agent_on(
        &network,
        HOST_A,
        &url,
        "a",
        &tmp.path().join("a"),
        &["--pod-network", "bridge"],
    )?;
    cli.apply_yaml(&manifests(echo_addr))?;
    let service = cli.json(&["get", "service", "echo"])?;
    let cluster_ip = service["spec"]["clusterIP"]
        .as_str()
        .context("a ClusterIP")?;
    let node_port = service["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .context("a nodePort")?;
    let node_port = SocketAddr::new(network.address(HOST_A).into(), u16::try_from(node_port)?);
    let cluster = SocketAddr::new(cluster_ip.parse()?, 53);

    let answer = wait_until("the NodePort to echo", WAIT, || {
        agent.check_running()?;
        ask(node_port, "ping")
    })?;
    assert_eq!(answer, "echo:ping");
    let answer = wait_until("the ClusterIP to echo", WAIT, || {
        ask_from(&network, HOST_A, cluster, "pong")
    })?;
    assert_eq!(answer, "echo:pong");

    // Without an endpoint (the Endpoints deleted, so its mirrored slice goes), datagrams are
    // not answered (and nothing listens).
    cli.ok(&["delete", "endpoints", "echo"])?;
    wait_until("the NodePort to stop answering", WAIT, || {
        Ok(ask(node_port, "gone")?.is_none().then_some(()))
    })?;
    Ok(())
}
