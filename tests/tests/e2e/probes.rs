//! Health probes on a dev server with the ticker guest. Guests cannot listen yet, so the
//! probed server is one this test runs on the node's address (pods share the node's network,
//! so that is the pod's IP): a readiness httpGet probe makes the pod `READY 0/1` while the
//! server answers 500 and `1/1` while it answers 200; a tcpSocket readiness probe on a closed
//! port keeps it unready with the reason in `describe pod`, as an exec probe does on the Wasm
//! runtime (which cannot exec); a failing liveness probe restarts the container with the
//! kubelet's events.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{copy_example_guest, wait_until, DevServer, Skiff};

/// An HTTP server on a thread that answers every request with the status it is set to.
struct Health {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Health {
    fn start(ip: IpAddr, status: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        let status = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (answer, count, stopped) = (status.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let code = answer.load(Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Ok(Health {
            addr,
            status,
            hits,
            stop,
            thread: Some(thread),
        })
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A dev server that may run guests from `guests`, and the ticker guest's image there.
fn start(tmp: &Path) -> anyhow::Result<(DevServer, String)> {
    let guests = tmp.join("guests");
    let server = DevServer::start_with_guests(&tmp.join("data"), &guests, &[])?;
    let ticker = copy_example_guest(&guests, "ticker")?;
    Ok((server, format!("file:{ticker}")))
}

/// The node's address, which its pods share, once the agent has reported its status (it
/// registers the Node first).
fn node_ip(cli: &Skiff) -> anyhow::Result<IpAddr> {
    wait_until(
        "the node dev1 to report its InternalIP",
        Duration::from_secs(30),
        || {
            let node = cli.json(&["get", "node", "dev1"])?;
            let ip = node["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == "InternalIP")
                .and_then(|a| a["address"].as_str())
                .map(str::parse)
                .transpose()?;
            Ok(ip)
        },
    )
}

/// A pod of one ticker container named `app` with `probes` (YAML lines under it).
fn pod_yaml(name: &str, image: &str, probes: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: \"{image}\"\n    \
         ports: [{{name: health, containerPort: 9}}]\n{probes}"
    )
}

/// The pod's READY and STATUS in `skiff get pods`.
fn ready_column(cli: &Skiff, pod: &str) -> anyhow::Result<(String, String)> {
    let table = cli.ok(&["get", "pods"])?;
    let row: Vec<String> = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pod))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Ok((
        row.get(1).cloned().unwrap_or_default(),
        row.get(2).cloned().unwrap_or_default(),
    ))
}

fn wait_ready_column(cli: &Skiff, pod: &str, ready: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("{pod} to show READY {ready}"),
        Duration::from_secs(60),
        || {
            let (shown, status) = ready_column(cli, pod)?;
            Ok((shown == ready && status == "Running").then_some(()))
        },
    )
}

fn condition(pod: &Value, kind: &str) -> Value {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The (reason, message) of the events about `pod`.
fn events(cli: &Skiff, pod: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(cli
        .items(&["get", "events"])?
        .iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (text(&e["reason"]), text(&e["message"]))
        })
        .collect())
}

fn wait_event(cli: &Skiff, pod: &str, reason: &str, message: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("event {reason} {message:?} about {pod}"),
        Duration::from_secs(60),
        || {
            let seen = events(cli, pod)?;
            Ok(seen
                .iter()
                .any(|(r, m)| r == reason && m == message)
                .then_some(()))
        },
    )
}

#[test]
fn readiness_probes_gate_ready() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, image) = start(tmp.path())?;
    let cli = server.cli();
    let ip = node_ip(&cli)?;
    let health = Health::start(ip, 500)?;
    let port = health.addr.port();

    cli.apply_yaml(&pod_yaml(
        "web",
        &image,
        &format!(
            "    readinessProbe:\n      httpGet: {{port: {port}, path: /ready}}\n      \
             periodSeconds: 1\n      failureThreshold: 1\n"
        ),
    ))?;
    wait_event(
        &cli,
        "web",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 500",
    )?;
    wait_ready_column(&cli, "web", "0/1")?;
    let pod = cli.json(&["get", "pod", "web"])?;
    assert_eq!(
        pod["status"]["podIP"].as_str(),
        Some(ip.to_string().as_str()),
        "the probed address is the pod's: {pod}"
    );
    assert_eq!(condition(&pod, "Ready")["status"], "False", "{pod}");
    assert_eq!(
        condition(&pod, "ContainersReady")["reason"],
        "ContainersNotReady"
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["started"], true,
        "{pod}"
    );

    health.answer(200);
    wait_ready_column(&cli, "web", "1/1")?;
    let pod = cli.json(&["get", "pod", "web"])?;
    assert_eq!(condition(&pod, "Ready")["status"], "True", "{pod}");
    health.answer(503);
    wait_ready_column(&cli, "web", "0/1")?;
    assert_eq!(
        cli.json(&["get", "pod", "web"])?["status"]["containerStatuses"][0]["restartCount"],
        0,
        "readiness never restarts"
    );
    assert!(health.hits.load(Ordering::SeqCst) >= 3);

    // A tcpSocket probe on a closed port (by name): unready, the reason in describe.
    let closed = TcpListener::bind((ip, 0))?.local_addr()?.port();
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: closed}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: \"{image}\"\n    \
         ports: [{{name: admin, containerPort: {closed}}}]\n    \
         readinessProbe:\n      tcpSocket: {{port: admin}}\n      periodSeconds: 1\n"
    ))?;
    let refused =
        format!("Readiness probe failed: dial tcp {ip}:{closed}: connect: connection refused");
    wait_event(&cli, "closed", "Unhealthy", &refused)?;
    wait_ready_column(&cli, "closed", "0/1")?;
    let described = cli.ok(&["describe", "pod", "closed"])?;
    assert!(described.contains(&refused), "{described}");
    assert!(
        described.contains(
            "Readiness:      tcp-socket :admin delay=0s timeout=1s period=1s #success=1 #failure=3"
        ),
        "{described}"
    );
    assert!(described.contains("Ready           False"), "{described}");

    // The Wasm runtime cannot exec: an exec probe fails with that reason.
    cli.apply_yaml(&pod_yaml(
        "execed",
        &image,
        "    readinessProbe:\n      exec: {command: [cat, /tmp/ready]}\n      periodSeconds: 1\n",
    ))?;
    wait_event(
        &cli,
        "execed",
        "Unhealthy",
        "Readiness probe failed: exec is not supported by the wasm runtime",
    )?;
    wait_ready_column(&cli, "execed", "0/1")?;
    Ok(())
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, image) = start(tmp.path())?;
    let cli = server.cli();
    let health = Health::start(node_ip(&cli)?, 200)?;
    let port = health.addr.port();
    cli.apply_yaml(&pod_yaml(
        "live",
        &image,
        &format!(
            "    livenessProbe:\n      httpGet: {{port: {port}, path: /healthz}}\n      \
             periodSeconds: 1\n      failureThreshold: 2\n"
        ),
    ))?;
    wait_ready_column(&cli, "live", "1/1")?;
    let first =
        cli.json(&["get", "pod", "live"])?["status"]["containerStatuses"][0]["containerID"].clone();

    health.answer(500);
    wait_event(
        &cli,
        "live",
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed with statuscode: 500",
    )?;
    wait_event(
        &cli,
        "live",
        "Killing",
        "Container app failed liveness probe, will be restarted",
    )?;
    health.answer(200);
    let pod = wait_until("the container to restart", Duration::from_secs(60), || {
        let pod = cli.json(&["get", "pod", "live"])?;
        let status = &pod["status"]["containerStatuses"][0];
        Ok(
            (status["restartCount"].as_i64() >= Some(1) && status["state"]["running"].is_object())
                .then_some(pod),
        )
    })?;
    let status = &pod["status"]["containerStatuses"][0];
    assert_ne!(status["containerID"], first, "a new container: {pod}");
    assert!(
        status["lastState"]["terminated"].is_object(),
        "the killed attempt is the last state: {pod}"
    );
    // Its probes start afresh and find it healthy: it stays up.
    wait_ready_column(&cli, "live", "1/1")?;
    Ok(())
}
