//! Port forwarding end to end against a control plane and an agent process: stock kubectl
//! 1.32 (SPDY tunnelled in a WebSocket), Debian's kubectl 1.20 (SPDY over an HTTP upgrade) and
//! `skiff port-forward` (the channel WebSocket) each reach the `tcp-echo` guest's port from a
//! local one. Through each, a payload of 16 MiB echoes back whole after the local client's
//! half close (the close reaches the pod, the pod's end comes back); a port nothing listens
//! on is reported as kubectl reports it; the Python client (`v4.channel.k8s.io`) echoes a line
//! and reads a refused port's error; a pod that does not exist or is not running is refused. Needs kubectl (both
//! versions) and the Python client (`scripts/install-deps.sh`), and the built guests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use skiff_e2e::{
    kubectl_1_20_command, kubectl_command, kubectl_output, start_with_agents, wait_until,
    PythonClient, Skiff,
};

const WAIT: Duration = Duration::from_secs(60);

/// A TCP port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The tcp-echo guest listening on `port`, declaring `silent` too (where nothing listens).
fn echo_pod(guest: &Path, port: u16, silent: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: echo}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: echo
    image: "file:{}"
    args: ["{port}"]
    ports:
    - containerPort: {port}
    - containerPort: {silent}
"#,
        guest.display()
    )
}

/// A running `... port-forward` child, killed when dropped.
struct Forwarding {
    child: Child,
    /// The local port it listens on (IPv4 loopback).
    local: u16,
    stderr: PathBuf,
}

impl Forwarding {
    /// Starts `command` (a port-forward of `remote` to a local port of its choice) and waits
    /// for its `Forwarding from 127.0.0.1:LOCAL -> REMOTE` line.
    fn start(mut command: Command, remote: u16, stderr: PathBuf) -> anyhow::Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?);
        let mut child = command.spawn().context("starting port-forward")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (lines, received) = mpsc::channel();
        // Read to the end: a closed pipe would kill the forwarder at its next line.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut forwarding = Forwarding {
            child,
            local: 0,
            stderr,
        };
        let suffix = format!(" -> {remote}");
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| anyhow::anyhow!("no Forwarding line: {}", forwarding.errors()))?;
            let local = line
                .strip_prefix("Forwarding from 127.0.0.1:")
                .and_then(|rest| rest.strip_suffix(&suffix))
                .and_then(|port| port.parse().ok());
            if let Some(local) = local {
                forwarding.local = local;
                return Ok(forwarding);
            }
        }
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `payload` through the forwarded port, half-closes, and reads until the end.
    fn echo(&self, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.local))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let writer = {
            let mut stream = stream.try_clone()?;
            let payload = payload.to_vec();
            std::thread::spawn(move || -> std::io::Result<()> {
                stream.write_all(&payload)?;
                stream.shutdown(Shutdown::Write)
            })
        };
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed)?;
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))??;
        Ok(echoed)
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 16 MiB (more than the sockets and windows on the way hold, so that a relay direction
/// waiting on the other would stall) of a pattern that shows a lost or reordered chunk.
fn payload() -> Vec<u8> {
    (0..16 << 20u32)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// Checks a forwarding: a line, then the whole payload, each echoed after the half close.
fn check_echo(forwarding: &Forwarding, who: &str) -> anyhow::Result<()> {
    let small = forwarding
        .echo(b"hello\n")
        .with_context(|| format!("{who}: a line's echo; {}", forwarding.errors()))?;
    assert_eq!(small, b"hello\n", "{who}");
    let payload = payload();
    let echoed = forwarding
        .echo(&payload)
        .with_context(|| format!("{who}: the payload's echo; {}", forwarding.errors()))?;
    assert!(
        echoed == payload,
        "{who}: {} bytes came back of {}; stderr: {}",
        echoed.len(),
        payload.len(),
        forwarding.errors()
    );
    Ok(())
}

fn skiff_command(cli: &Skiff) -> Command {
    let mut command = Command::new(&cli.binary);
    if let Some(kubeconfig) = skiff_e2e::kubeconfig_for(&cli.server) {
        command.env("KUBECONFIG", kubeconfig);
    }
    command.env("SKIFF_SERVER", &cli.server);
    command
}

#[test]
fn kubectl_and_skiff_forward_ports_with_half_closes_and_errors() -> anyhow::Result<()> {
    let guest = skiff_e2e::wasip2_guests(&["tcp-echo.wasm"])?.join("tcp-echo.wasm");
    let tmp = tempfile::tempdir()?;
    let (server, mut agents) = start_with_agents(tmp.path(), &[], &["node-a"])?;
    let cli = server.cli();
    let (port, silent) = (free_port()?, free_port()?);
    cli.apply_yaml(&echo_pod(&guest, port, silent))?;
    // kubectl ends a port-forward at the first connection the pod refuses: start forwarding
    // once the guest listens.
    let listening = format!("listening on 0.0.0.0:{port}");
    wait_until("the echo guest listening", WAIT, || {
        agents[0].check_running()?;
        let log = cli.run(&["logs", "echo"])?;
        Ok(log.stdout.contains(&listening).then_some(()))
    })?;
    let url = server.url();
    let cache = tmp.path().join("kube-cache");
    let remote = format!(":{port}");

    let mut kubectl = kubectl_command(&url, &cache);
    kubectl.args(["port-forward", "pod/echo", &remote]);
    let forwarding = Forwarding::start(kubectl, port, tmp.path().join("kubectl.err"))?;
    check_echo(&forwarding, "kubectl 1.32")?;
    drop(forwarding);

    let mut kubectl_1_20 = kubectl_1_20_command(&url, &cache);
    kubectl_1_20.args(["port-forward", "pod/echo", &remote]);
    let forwarding = Forwarding::start(kubectl_1_20, port, tmp.path().join("kubectl-1.20.err"))?;
    check_echo(&forwarding, "kubectl 1.20")?;
    drop(forwarding);

    let mut skiff = skiff_command(&cli);
    skiff.args(["port-forward", "pod/echo", &remote]);
    let forwarding = Forwarding::start(skiff, port, tmp.path().join("skiff.err"))?;
    check_echo(&forwarding, "skiff")?;
    drop(forwarding);

    // Nothing listens on `silent`: the local connection ends and the forwarder says why.
    for (who, mut command) in [
        ("kubectl", kubectl_command(&url, &cache)),
        ("skiff", skiff_command(&cli)),
    ] {
        command.args(["port-forward", "pod/echo", &format!(":{silent}")]);
        let stderr = tmp.path().join(format!("{who}-silent.err"));
        let forwarding = Forwarding::start(command, silent, stderr)?;
        let echoed = forwarding.echo(b"anyone?")?;
        assert!(echoed.is_empty(), "{who}: {echoed:?}");
        let message = wait_until(&format!("{who} to report the refusal"), WAIT, || {
            let errors = forwarding.errors();
            Ok(errors.contains("connection refused").then_some(errors))
        })?;
        assert!(
            message.contains(&format!(
                "error forwarding port {silent} to pod default/echo"
            )) && message.contains(&format!(
                "dial tcp 127.0.0.1:{silent}: connect: connection refused"
            )),
            "{who}: {message}"
        );
        if who == "kubectl" {
            // As against Kubernetes: kubectl ends the whole forward at an error.
            let mut forwarding = forwarding;
            wait_until("kubectl to end the forward", WAIT, || {
                Ok(forwarding.child.try_wait()?.map(|_| ()))
            })?;
            assert!(
                forwarding.errors().contains("lost connection to pod"),
                "{}",
                forwarding.errors()
            );
        } else {
            let echoed = forwarding.echo(b"anyone there?")?;
            assert!(echoed.is_empty(), "skiff keeps serving: {echoed:?}");
        }
    }

    // The Python client's channel WebSocket, both ports on one socket.
    let python = PythonClient::for_server(&url)?;
    let seen = python.run(
        "portforward.py",
        &["default", "echo", &port.to_string(), &silent.to_string()],
    )?;
    assert_eq!(seen["echoed"], "hello from python\n", "{seen}");
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "error forwarding port {silent} to pod default/echo"
        )),
        "{seen}"
    );

    // A pod that does not exist is refused before anything listens; the server refuses a
    // pod that is not running, and a request that is no upgrade.
    let missing = cli.run(&["port-forward", "pod/nope", &remote])?;
    assert!(!missing.success, "{missing:?}");
    assert!(missing.stderr.contains("nope"), "{missing:?}");
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: pending}}\nspec:\n  nodeSelector: \
         {{nowhere: \"true\"}}\n  containers:\n  - {{name: c, image: \"file:{}\"}}\n",
        guest.display()
    ))?;
    let raw = |pod: &str| -> anyhow::Result<(bool, String)> {
        let path = format!("/api/v1/namespaces/default/pods/{pod}/portforward?ports=1");
        let out = kubectl_output(&url, &cache, &["get", "--raw", &path])?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (ok, pending) = raw("pending")?;
    assert!(
        !ok && pending.contains("is not running (phase Pending)"),
        "{pending}"
    );
    let (ok, plain) = raw("echo")?;
    assert!(
        !ok && plain.contains("served over a WebSocket"),
        "a plain GET is no WebSocket: {plain}"
    );
    Ok(())
}
