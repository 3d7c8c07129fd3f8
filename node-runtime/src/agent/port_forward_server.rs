//! The agent's port-forward endpoint, as the kubelet's `/portForward/{namespace}/{pod}`: a
//! WebSocket speaking `v5.channel.k8s.io` for one connection to `?port=P` of the pod (see
//! `skiff_api::portforward`). The agent connects to the pod's own IP, or to 127.0.0.1 for a
//! pod on the node's network (Wasm pods' sockets are the node's). The port goes first on
//! channels 0 and 1; then bytes pass on channel 0 both ways, the server's close signal
//! half-closes the connection to the pod, and the socket closes once the pod's side ends. A
//! connection the pod refuses is reported as text on channel 1. A pod not on this node is
//! refused before the upgrade.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use skiff_api::portforward::{
    close_message, data_message, port_message, ports_in_query, CLOSE_CHANNEL, WEBSOCKET_PROTOCOL_V5,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::log_index::LogIndex;
use crate::runtime::RuntimeSet;

/// How long the pod may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes read from the pod into one message.
const READ_CHUNK: usize = 32 << 10;

/// Where the endpoint finds pods: the pods on this node and their runtimes.
#[derive(Clone)]
pub struct PortForwardState {
    /// The pods on this node (their uids name their sandboxes).
    pub index: Arc<LogIndex>,
    /// The runtimes, asked for a sandbox's IP.
    pub runtimes: RuntimeSet,
}

/// The `/portForward/...` route.
pub fn router(state: PortForwardState) -> Router {
    Router::new()
        // `any`: over the tunnel the WebSocket is an HTTP/2 extended CONNECT.
        .route("/portForward/{namespace}/{pod}", any(port_forward))
        .with_state(state)
}

async fn port_forward(
    State(state): State<PortForwardState>,
    Path((namespace, pod)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let port = match ports_in_query(&raw.unwrap_or_default(), "port").as_deref() {
        Ok([port]) => *port,
        Ok(_) => return (StatusCode::BAD_REQUEST, "port: name exactly one port").into_response(),
        Err(message) => return (StatusCode::BAD_REQUEST, message.clone()).into_response(),
    };
    let Some(uid) = state.index.uid(&namespace, &pod) else {
        let message = format!("pod {namespace}/{pod} is not on this node");
        return (StatusCode::NOT_FOUND, message).into_response();
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(ip) = pod_ip(&state.runtimes, &uid).await else {
        let message = format!("pod {namespace}/{pod} has no sandbox on this node");
        return (StatusCode::NOT_FOUND, message).into_response();
    };
    let target = SocketAddr::new(ip, port);
    let label = format!("port {port} to pod {namespace}/{pod}, uid {uid}");
    upgrade
        .protocols([WEBSOCKET_PROTOCOL_V5])
        .on_upgrade(move |socket| async move {
            if let Err(err) = serve(socket, target, port, &label).await {
                tracing::debug!(%err, "port-forward stream ended");
            }
        })
}

/// The pod's own IP as its sandbox reports it, else (a sandbox on the node's network) the
/// node's loopback address; `None` when no runtime knows the sandbox.
async fn pod_ip(runtimes: &RuntimeSet, uid: &str) -> Option<IpAddr> {
    for runtime in runtimes.iter() {
        if let Ok(status) = runtime.pod_sandbox_status(&uid.to_string()).await {
            let own = status.ip.and_then(|ip| ip.parse().ok());
            return Some(own.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
    }
    None
}

async fn serve(
    socket: WebSocket,
    target: SocketAddr,
    port: u16,
    label: &str,
) -> Result<(), axum::Error> {
    let (mut sink, mut stream) = socket.split();
    for channel in [0, 1] {
        sink.send(binary(port_message(channel, port))).await?;
    }
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
    let connection = match connected {
        Ok(Ok(connection)) => connection,
        Ok(Err(err)) => return refuse(sink, label, &dial_error(target, &err)).await,
        Err(_) => {
            let message = format!("dial tcp {target}: no answer within {CONNECT_TIMEOUT:?}");
            return refuse(sink, label, &message).await;
        }
    };
    let (mut from_pod, mut to_pod) = connection.into_split();
    // Each direction in a loop of its own, so that neither waits on the other's writes.
    let upstream = async {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => return,
                _ => continue,
            };
            match data.split_first() {
                // A failed write: the pod's side is going, and the downstream sees its end.
                Some((0, bytes)) if to_pod.write_all(bytes).await.is_err() => {
                    return std::future::pending().await;
                }
                Some((&CLOSE_CHANNEL, [0])) => {
                    let _ = to_pod.shutdown().await;
                }
                _ => {}
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0; READ_CHUNK];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => return sink.send(binary(close_message(0))).await,
                Ok(n) => sink.send(binary(data_message(0, &buf[..n]))).await?,
            }
        }
    };
    // The server's socket ending, or the pod's side, ends the connection.
    tokio::select! {
        () = upstream => {}
        sent = downstream => sent?,
    }
    sink.send(normal_close()).await
}

/// A failed connect as Go's dialer words it (`dial tcp ADDR: connect: connection refused`),
/// which is what kubectl users know from the kubelet.
fn dial_error(target: SocketAddr, err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {target}: connect: connection refused")
        }
        _ => format!("dial tcp {target}: {err}"),
    }
}

/// Reports why the pod could not be reached and closes the socket.
async fn refuse(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    label: &str,
    reason: &str,
) -> Result<(), axum::Error> {
    let message = format!("error forwarding {label}: {reason}");
    sink.send(binary(data_message(1, message.as_bytes())))
        .await?;
    sink.send(normal_close()).await
}

fn binary(data: Vec<u8>) -> Message {
    Message::Binary(Bytes::from(data))
}

fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    }))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Client;

    use super::*;
    use crate::agent::log_index::ContainerLog;
    use crate::runtime::hollow::HollowRuntime;
    use crate::runtime::{ContainerRuntime, PodSandboxConfig};

    /// The endpoint on 127.0.0.1:0 knowing one pod, `ns/web`, on the node's network.
    async fn endpoint() -> SocketAddr {
        let index = Arc::new(LogIndex::default());
        let log = ContainerLog {
            current: None,
            previous: None,
            running: true,
        };
        index.set("ns", "web", "uid-1", "c", log.clone());
        // A pod the index knows but no runtime has a sandbox for.
        index.set("ns", "gone", "uid-2", "c", log);
        let hollow = HollowRuntime::new();
        let sandbox = PodSandboxConfig {
            uid: "uid-1".into(),
            namespace: "ns".into(),
            name: "web".into(),
            labels: Default::default(),
            log_directory: std::env::temp_dir(),
            network: None,
            hostname: String::new(),
            dns: None,
        };
        hollow.run_pod_sandbox(&sandbox).await.expect("sandbox");
        let mut runtimes = RuntimeSet::default();
        runtimes.push(Arc::new(hollow));
        let app = router(PortForwardState { index, runtimes });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn open(
        addr: SocketAddr,
        path: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
        let mut request = format!("ws://{addr}{path}")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            WEBSOCKET_PROTOCOL_V5.parse().expect("header"),
        );
        tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade")
            .0
    }

    async fn next_binary(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<TcpStream>,
        >,
    ) -> Option<Vec<u8>> {
        loop {
            match socket.next().await? {
                Ok(Client::Binary(data)) => return Some(data.to_vec()),
                Ok(Client::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    #[tokio::test]
    async fn bytes_pass_both_ways_and_a_half_close_reaches_the_pod() {
        // The "pod": reads until the half close, then answers with what it read, reversed.
        let pod = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = pod.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut connection, _) = pod.accept().await.expect("accept");
            let mut read = Vec::new();
            connection.read_to_end(&mut read).await.expect("read");
            read.reverse();
            connection.write_all(&read).await.expect("write");
        });
        let addr = endpoint().await;
        let mut socket = open(addr, &format!("/portForward/ns/web?port={port}")).await;
        for channel in [0, 1] {
            assert_eq!(
                next_binary(&mut socket).await,
                Some(port_message(channel, port))
            );
        }
        socket
            .send(Client::Binary(Bytes::from_static(b"\x00abc")))
            .await
            .expect("send");
        socket
            .send(Client::Binary(Bytes::from(close_message(0))))
            .await
            .expect("send");
        let mut answer = Vec::new();
        while let Some(message) = next_binary(&mut socket).await {
            match message.split_first() {
                Some((0, data)) => answer.extend_from_slice(data),
                Some((&CLOSE_CHANNEL, [0])) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(answer, b"cba");
    }

    #[tokio::test]
    async fn a_refused_port_is_reported_and_an_unknown_pod_or_sandbox_refused_before_the_upgrade() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let addr = endpoint().await;
        let mut socket = open(addr, &format!("/portForward/ns/web?port={port}")).await;
        next_binary(&mut socket).await.expect("port");
        next_binary(&mut socket).await.expect("port");
        let error = next_binary(&mut socket).await.expect("error");
        assert_eq!(error[0], 1);
        let text = String::from_utf8_lossy(&error[1..]);
        assert!(
            text.contains(&format!(
                "error forwarding port {port} to pod ns/web, uid uid-1"
            )) && text.contains("connect: connection refused"),
            "{text}"
        );
        assert_eq!(next_binary(&mut socket).await, None);

        for pod in ["other", "gone"] {
            let mut request = format!("ws://{addr}/portForward/ns/{pod}?port=80")
                .into_client_request()
                .expect("request");
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                WEBSOCKET_PROTOCOL_V5.parse().expect("header"),
            );
            match tokio_tungstenite::connect_async(request).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 404, "{pod}");
                }
                other => panic!("{pod}: expected a 404, got {:?}", other.map(|_| ())),
            }
        }
    }
}
