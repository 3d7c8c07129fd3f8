//! Probes on paused time against real listeners: thresholds, the initial delay, timeouts,
//! redirects, named ports, exec on a runtime without it, and the startup probe's hold.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::{Container, Probe};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::run::{Prober, Reports};
use super::*;
use crate::runtime::hollow::HollowRuntime;

/// A server whose `/healthz` answers the status it is set to, counting requests.
struct Server {
    port: u16,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

async fn server() -> Server {
    let status = Arc::new(AtomicU16::new(200));
    let hits = Arc::new(AtomicUsize::new(0));
    let state = (status.clone(), hits.clone());
    let router = Router::new()
        .route(
            "/healthz",
            get(
                |State((status, hits)): State<(Arc<AtomicU16>, Arc<AtomicUsize>)>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    StatusCode::from_u16(status.load(Ordering::SeqCst)).expect("status")
                },
            ),
        )
        .route(
            "/away",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://127.0.0.2:1/")],
                )
            }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { port, status, hits }
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

fn target() -> Target {
    Target {
        pod_ip: "127.0.0.1".into(),
        runtime: Arc::new(HollowRuntime::new()),
        container_id: "c1".into(),
    }
}

/// Failure messages with the whole seconds since `start` they came at.
type Said = Arc<Mutex<Vec<(u64, String)>>>;

fn reporting(start: Instant) -> (Reports, Said) {
    let said: Said = Arc::default();
    let sink = said.clone();
    let reports = Reports {
        events: Arc::new(move |kind, why| {
            let at = start.elapsed().as_secs();
            sink.lock()
                .expect("said")
                .push((at, format!("{} probe failed: {why}", kind.title())));
        }),
        wake: Arc::new(Notify::new()),
    };
    (reports, said)
}

fn probe(value: serde_json::Value) -> Probe {
    serde_json::from_value(value).expect("probe")
}

/// Runs `probe` as `kind` from now; its verdicts and failure messages.
fn spawn(kind: ProbeKind, probe: &Probe) -> (watch::Receiver<Verdict>, Said, Instant) {
    let start = Instant::now();
    let settings = Settings::of(probe);
    let container = Container::default();
    let prober = Prober {
        kind,
        settings,
        action: Action::resolve(probe, &container, "127.0.0.1", settings.timeout),
        target: target(),
    };
    let (tx, rx) = watch::channel(Verdict::Unknown);
    let (reports, said) = reporting(start);
    tokio::spawn(prober.run(start, None, tx, reports));
    (rx, said, start)
}

/// The next verdict, with the whole seconds since `start` it came at.
async fn next(rx: &mut watch::Receiver<Verdict>, start: Instant) -> (u64, Verdict) {
    rx.changed().await.expect("the probe runs");
    (start.elapsed().as_secs(), rx.borrow_and_update().clone())
}

#[tokio::test(start_paused = true)]
async fn thresholds_count_consecutive_attempts_each_period() {
    let server = server().await;
    server.status.store(500, Ordering::SeqCst);
    let readiness = probe(json!({"httpGet": {"port": server.port, "path": "/healthz"},
        "periodSeconds": 10, "failureThreshold": 3, "successThreshold": 2}));
    let (mut rx, said, start) = spawn(ProbeKind::Readiness, &readiness);
    let failed = Verdict::Failure("HTTP probe failed with statuscode: 500".into());
    assert_eq!(
        next(&mut rx, start).await,
        (20, failed),
        "attempts at 0, 10, 20 s"
    );
    let events = said.lock().expect("said").clone();
    let message = "Readiness probe failed: HTTP probe failed with statuscode: 500";
    assert_eq!(
        events,
        [0, 10, 20].map(|at| (at, message.to_string())),
        "each failed attempt is told"
    );
    server.status.store(200, Ordering::SeqCst);
    assert_eq!(
        next(&mut rx, start).await,
        (40, Verdict::Success),
        "two successes: 30, 40 s"
    );
    server.status.store(302, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(*rx.borrow(), Verdict::Success, "3xx is a success");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        7,
        "attempts at 0, 10 ... 60 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_initial_delay_comes_before_the_first_attempt() {
    let port = closed_port().await;
    let liveness = probe(
        json!({"tcpSocket": {"port": port}, "initialDelaySeconds": 5,
        "periodSeconds": 10, "failureThreshold": 2}),
    );
    let (mut rx, said, start) = spawn(ProbeKind::Liveness, &liveness);
    let refused = format!("dial tcp 127.0.0.1:{port}: connect: connection refused");
    assert_eq!(
        next(&mut rx, start).await,
        (15, Verdict::Failure(refused.clone()))
    );
    let events = said.lock().expect("said").clone();
    let message = format!("Liveness probe failed: {refused}");
    assert_eq!(events, [(5, message.clone()), (15, message)]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_fails() {
    // Accepts connections (the backlog does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let readiness = probe(json!({"httpGet": {"port": port}, "timeoutSeconds": 3,
        "failureThreshold": 1}));
    let (mut rx, _, start) = spawn(ProbeKind::Readiness, &readiness);
    let why = format!(
        "Get \"http://127.0.0.1:{port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    );
    assert_eq!(next(&mut rx, start).await, (3, Verdict::Failure(why)));
}

#[tokio::test(start_paused = true)]
async fn a_refused_http_probe_says_so_as_the_kubelet_does() {
    let port = closed_port().await;
    let liveness =
        probe(json!({"httpGet": {"port": port, "path": "/healthz"}, "failureThreshold": 1}));
    let (mut rx, _, start) = spawn(ProbeKind::Liveness, &liveness);
    let why = format!(
        "Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
    );
    assert_eq!(next(&mut rx, start).await, (0, Verdict::Failure(why)));
}

#[tokio::test(start_paused = true)]
async fn redirects_are_followed_on_the_same_host_only() {
    let server = server().await;
    let away = probe(json!({"httpGet": {"port": server.port, "path": "/away"}}));
    let (mut rx, _, start) = spawn(ProbeKind::Readiness, &away);
    assert_eq!(
        next(&mut rx, start).await,
        (0, Verdict::Success),
        "a redirect elsewhere is the answer"
    );
    let looping = probe(json!({"httpGet": {"port": server.port, "path": "/loop"},
        "failureThreshold": 1}));
    let (mut rx, _, start) = spawn(ProbeKind::Readiness, &looping);
    match next(&mut rx, start).await {
        (0, Verdict::Failure(why)) => assert!(why.contains("stopped after 10 redirects"), "{why}"),
        other => panic!("{other:?}"),
    }
}

fn container(value: serde_json::Value) -> Container {
    serde_json::from_value(value).expect("container")
}

/// Waits until `check` holds of the probes, on paused time.
async fn until(probes: &ContainerProbes, check: impl Fn(&ContainerProbes) -> bool) -> u64 {
    let start = Instant::now();
    while !check(probes) {
        assert!(start.elapsed() < Duration::from_secs(600), "never happened");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    start.elapsed().as_secs()
}

#[tokio::test(start_paused = true)]
async fn named_ports_and_exec_on_a_runtime_that_cannot() {
    let server = server().await;
    let spec = container(json!({"name": "app",
        "ports": [{"name": "http", "containerPort": server.port}],
        "readinessProbe": {"httpGet": {"port": "http", "path": "/healthz"}, "periodSeconds": 1},
        "livenessProbe": {"exec": {"command": ["true"]}, "failureThreshold": 2, "periodSeconds": 1}}));
    let (reports, said) = reporting(Instant::now());
    let probes = ContainerProbes::start(&spec, target(), reports).expect("probes");
    assert!(probes.started(), "no startup probe: started at once");
    assert!(
        !probes.ready(),
        "not ready before the readiness probe succeeded"
    );
    assert_eq!(until(&probes, ContainerProbes::ready).await, 0);
    assert_eq!(until(&probes, |p| p.failed().is_some()).await, 1);
    assert_eq!(probes.failed(), Some((ProbeKind::Liveness, None)));
    let events = said.lock().expect("said").clone();
    assert_eq!(
        events[0].1,
        "Liveness probe failed: exec is not supported by the hollow runtime"
    );
    assert!(server.hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_startup_probe_holds_the_others_and_fails_the_container() {
    let server = server().await;
    let port = closed_port().await;
    let spec = container(json!({"name": "app",
        "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5, "failureThreshold": 3,
            "terminationGracePeriodSeconds": 2},
        "readinessProbe": {"httpGet": {"port": server.port, "path": "/healthz"}}}));
    let (reports, _) = reporting(Instant::now());
    let probes = ContainerProbes::start(&spec, target(), reports).expect("probes");
    let at = until(&probes, |p| p.failed().is_some()).await;
    assert_eq!(at, 10, "attempts at 0, 5, 10 s");
    assert_eq!(
        probes.failed(),
        Some((ProbeKind::Startup, Some(Duration::from_secs(2))))
    );
    assert!(!probes.started() && !probes.ready());
    assert_eq!(server.hits.load(Ordering::SeqCst), 0, "readiness never ran");

    // Once the startup probe succeeds, readiness runs.
    let spec = container(json!({"name": "app",
        "startupProbe": {"httpGet": {"port": server.port, "path": "/healthz"}, "initialDelaySeconds": 4},
        "readinessProbe": {"tcpSocket": {"port": server.port}, "initialDelaySeconds": 2}}));
    let (reports, _) = reporting(Instant::now());
    let probes = ContainerProbes::start(&spec, target(), reports).expect("probes");
    assert_eq!(until(&probes, ContainerProbes::ready).await, 4);
    assert!(probes.started());
}

/// Answers one HTTPS request with 204 on a self-signed certificate, which probes accept.
#[tokio::test]
async fn https_probes_skip_certificate_checks() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{crypto, ServerConfig};

    let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/cert.pem")).expect("cert");
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/key.pem")).expect("key");
    let config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let answer = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            let _ = tls.write_all(answer).await;
            let _ = tls.shutdown().await;
        }
    });
    let https = probe(json!({"httpGet": {"port": port, "scheme": "HTTPS"}}));
    let action = Action::resolve(
        &https,
        &Container::default(),
        "127.0.0.1",
        Duration::from_secs(5),
    )
    .expect("an action");
    assert_eq!(
        action.attempt(&target(), Duration::from_secs(5)).await,
        Outcome::Success
    );
}
