//! Wasm networking for real: guests on WASI sockets and wasi:http handlers, listening only on
//! their declared ports, in the pod's network namespace when it has one. The example guests
//! tcp-echo and http-echo must be built (scripts/build-guests.sh).

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{setns, unshare, CloneFlags};

use super::*;
use crate::runtime::{ContainerPort, PodNetwork, Protocol};

/// How long a guest may take to start listening.
const LISTEN_DEADLINE: Duration = Duration::from_secs(30);

/// The reference of a built example guest (preview 2).
pub(super) fn example(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../wasm-examples/target/wasm32-wasip2/release")
        .join(file);
    assert!(
        path.exists(),
        "build the example guests with scripts/build-guests.sh first; missing {}",
        path.display()
    );
    format!("file:{}", path.canonicalize().expect("path").display())
}

/// A TCP port nothing listens on right now.
pub(super) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(super) fn tcp(port: u16) -> Vec<ContainerPort> {
    vec![ContainerPort {
        port,
        protocol: Protocol::Tcp,
    }]
}

impl Fixture {
    /// Creates container `name` (its own log) of `reference` declaring `ports`.
    pub(super) async fn create_with_ports(
        &self,
        sandbox: &SandboxId,
        name: &str,
        reference: &str,
        ports: Vec<ContainerPort>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<ContainerId, RuntimeError> {
        let config = ContainerConfig {
            ports,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_path: crate::runtime::container_log_path(name, 0),
            ..ContainerConfig::new(name, self.pull(reference).await)
        };
        self.runtime.create_container(sandbox, &config).await
    }

    /// Starts http-echo, answering as pod `pod_name`, on a free port of the fixture's sandbox.
    async fn start_http_echo(&self, pod_name: &str) -> (ContainerId, u16) {
        let port = free_port();
        let id = self
            .create_with_ports(
                &self.sandbox,
                "http",
                &example("http_echo.wasm"),
                tcp(port),
                &[],
                &[("POD_NAME", pod_name)],
            )
            .await
            .expect("create");
        self.runtime.start_container(&id).await.expect("start");
        (id, port)
    }
}

/// Connects to 127.0.0.1:`port` once the guest listens, sends `request` and reads the reply
/// until the peer closes or `reply_len` bytes came (blocking: run it off the async threads).
fn exchange(port: u16, request: &[u8], reply_len: Option<usize>) -> std::io::Result<String> {
    let deadline = Instant::now() + LISTEN_DEADLINE;
    let stream = loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(stream) => break stream,
            Err(err) if Instant::now() > deadline => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    skiff_test_support::exchange::exchange(stream, request, reply_len, LISTEN_DEADLINE)
}

async fn exchange_async(port: u16, request: &'static [u8], len: Option<usize>) -> String {
    tokio::task::spawn_blocking(move || exchange(port, request, len))
        .await
        .expect("client thread")
        .expect("exchange with the guest")
}

#[tokio::test]
async fn a_guest_listens_on_its_port_and_nowhere_else() {
    let f = fixture().await;
    let (port, other) = (free_port(), free_port());
    let echo = f
        .create_with_ports(
            &f.sandbox,
            "echo",
            &example("tcp-echo.wasm"),
            tcp(port),
            &[&port.to_string()],
            &[],
        )
        .await
        .expect("create");
    f.runtime.start_container(&echo).await.expect("start");
    assert_eq!(exchange_async(port, b"ping\n", Some(5)).await, "ping\n");

    let refused = f
        .create_with_ports(
            &f.sandbox,
            "refused",
            &example("tcp-echo.wasm"),
            tcp(port),
            &[&other.to_string()],
            &[],
        )
        .await
        .expect("create");
    let (code, reason, _) = f.run_to_exit(&refused).await;
    assert_eq!((code, reason.as_str()), (1, "Error"));
    let log = f.log(&refused).await;
    assert!(
        log.contains(&format!("cannot listen on port {other}: access-denied")),
        "{log}"
    );
    f.runtime
        .stop_container(&echo, Duration::ZERO)
        .await
        .expect("stop");
}

const GET: &[u8] = b"GET /hello?x=1 HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn a_wasi_http_handler_answers_each_request_and_stops_gracefully() {
    let f = fixture().await;
    let (id, port) = f.start_http_echo("echo-1").await;
    for _ in 0..3 {
        let reply = exchange_async(port, GET, None).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("pod echo-1: GET /hello?x=1\n"), "{reply}");
    }
    assert!(
        matches!(
            f.runtime.container_status(&id).await.expect("status").state,
            ContainerState::Running { .. }
        ),
        "a handler runs while it serves"
    );
    assert!(f
        .log(&id)
        .await
        .contains("http-echo: pod echo-1: GET /hello?x=1"));

    f.runtime
        .stop_container(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    match f.runtime.container_status(&id).await.expect("status").state {
        ContainerState::Exited {
            exit_code, reason, ..
        } => assert_eq!((exit_code, reason.as_str()), (0, "Completed")),
        other => panic!("still {other:?}"),
    }
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "a stopped handler accepts nothing"
    );
}

#[tokio::test]
async fn a_stopping_handler_finishes_the_requests_in_flight() {
    const SLOW: &[u8] =
        b"GET /slow?delay_ms=1000 HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n";
    let f = fixture().await;
    let (id, port) = f.start_http_echo("echo-2").await;
    let slow = tokio::task::spawn_blocking(move || exchange(port, SLOW, None));
    // In flight once the handler has logged it (it answers a second later).
    let deadline = Instant::now() + LISTEN_DEADLINE;
    while !f.log(&id).await.contains("GET /slow?delay_ms=1000") {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.runtime
        .stop_container(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    let reply = slow
        .await
        .expect("client thread")
        .expect("the request in flight is answered");
    assert!(
        reply.starts_with("HTTP/1.1 200")
            && reply.ends_with("pod echo-2: GET /slow?delay_ms=1000\n"),
        "{reply}"
    );
    assert!(matches!(
        f.runtime.container_status(&id).await.expect("status").state,
        ContainerState::Exited { exit_code: 0, .. }
    ));
}

/// A connection made before the stop whose request comes after it (a node proxy that picked
/// this pod a moment before its endpoint went) is answered, not closed unanswered.
#[tokio::test]
async fn a_stopping_handler_answers_a_connection_made_before_the_stop() {
    let f = fixture().await;
    let (id, port) = f.start_http_echo("echo-3").await;
    assert!(exchange_async(port, GET, None)
        .await
        .starts_with("HTTP/1.1 200"));
    let early = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    let answer = async {
        // The stop has begun once the listener is gone.
        let deadline = Instant::now() + LISTEN_DEADLINE;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            assert!(Instant::now() < deadline, "the listener never closed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::task::spawn_blocking(move || {
            skiff_test_support::exchange::exchange(early, GET, None, LISTEN_DEADLINE)
        })
        .await
        .expect("client thread")
    };
    let (stopped, reply) = tokio::join!(
        f.runtime.stop_container(&id, Duration::from_secs(10)),
        answer
    );
    stopped.expect("stop");
    let reply = reply.expect("the early connection is answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn a_wasi_http_handler_without_a_tcp_port_is_refused() {
    let f = fixture().await;
    let udp = vec![ContainerPort {
        port: 8080,
        protocol: Protocol::Udp,
    }];
    let err = f
        .create_with_ports(
            &f.sandbox,
            "http",
            &example("http_echo.wasm"),
            udp,
            &[],
            &[],
        )
        .await
        .expect_err("nowhere to serve");
    assert!(err.to_string().contains("containerPort"), "{err}");
}

/// A new network namespace with its loopback up, held by the returned descriptor (made on a
/// thread of its own, which ends: the namespace lives as long as the descriptor).
pub(super) fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (tests run as root)");
        // A child inherits the namespace of the thread that spawns it.
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(up.success(), "ip link set lo up: {up}");
        OwnedFd::from(File::open("/proc/thread-self/ns/net").expect("open the namespace"))
    })
    .join()
    .expect("namespace thread")
}

#[tokio::test]
async fn guests_of_a_pod_with_its_own_namespace_listen_in_it() {
    let f = fixture().await;
    let netns = Arc::new(new_netns());
    let sandbox = f
        .runtime
        .run_pod_sandbox(&PodSandboxConfig {
            network: Some(PodNetwork {
                ip: "10.244.0.7".parse().expect("ip"),
                netns: netns.clone(),
            }),
            uid: "netns-pod".into(),
            namespace: "default".into(),
            name: "netns-pod".into(),
            labels: Default::default(),
            log_directory: f.dir.path().join("logs-netns"),
            hostname: String::new(),
            dns: None,
        })
        .await
        .expect("sandbox");
    assert_eq!(
        f.runtime
            .pod_sandbox_status(&sandbox)
            .await
            .expect("status")
            .ip
            .as_deref(),
        Some("10.244.0.7")
    );
    let port = free_port();
    let echo = f
        .create_with_ports(
            &sandbox,
            "echo",
            &example("tcp-echo.wasm"),
            tcp(port),
            &[&port.to_string()],
            &[],
        )
        .await
        .expect("create");
    f.runtime.start_container(&echo).await.expect("start");
    let http_port = free_port();
    let http = f
        .create_with_ports(
            &sandbox,
            "http",
            &example("http_echo.wasm"),
            tcp(http_port),
            &[],
            &[("POD_NAME", "netns-pod")],
        )
        .await
        .expect("create");
    f.runtime.start_container(&http).await.expect("start");

    let inside = netns.clone();
    let (echoed, answered) = tokio::task::spawn_blocking(move || {
        // A thread of its own, so that no pooled thread is left in the namespace.
        std::thread::spawn(move || {
            setns(&*inside, CloneFlags::CLONE_NEWNET).expect("enter the namespace");
            Ok::<_, std::io::Error>((
                exchange(port, b"inside\n", Some(7))?,
                exchange(http_port, GET, None)?,
            ))
        })
        .join()
        .expect("client thread")
    })
    .await
    .expect("join")
    .expect("the guests answer inside the pod's namespace");
    assert_eq!(echoed, "inside\n");
    assert!(
        answered.ends_with("pod netns-pod: GET /hello?x=1\n"),
        "{answered}"
    );
    for port in [port, http_port] {
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
            "a guest must not listen in the node's namespace"
        );
    }
    f.runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove");
}
