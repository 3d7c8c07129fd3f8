//! The tunnel end to end over an in-memory connection: the server's `Tunnels` on one end, the
//! agent's `serve` on the other.

use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::extract::Path;
use axum::routing::{any, get};
use axum::Router;
use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{serve, Tunnel, Tunnels};

/// An agent's router: an echo of a path parameter, a stream held open, a WebSocket echo.
fn agent_app(name: &'static str) -> Router {
    Router::new()
        .route("/name", get(move || async move { name }))
        .route(
            "/echo/{n}",
            get(|Path(n): Path<u32>| async move { n.to_string() }),
        )
        .route(
            "/follow",
            get(|| async {
                let lines = futures::stream::iter(0..3)
                    .then(|i| async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Ok::<_, std::io::Error>(format!("line {i}\n"))
                    })
                    .chain(futures::stream::pending());
                Body::from_stream(lines)
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 8 << 20] }))
        .route(
            "/ws",
            any(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        if let WsMessage::Text(text) = message {
                            let reply = WsMessage::Text(format!("echo {}", text.as_str()).into());
                            if socket.send(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                })
            }),
        )
}

/// An agent connected to `tunnels` as `node`: its serve task, its stop, and the server's
/// attach task.
struct Agent {
    serving: JoinHandle<Result<(), hyper::Error>>,
    stop: CancellationToken,
    attached: JoinHandle<()>,
}

async fn connect(tunnels: &Tunnels, node: &'static str, app: Router) -> Agent {
    connect_until(tunnels, node, app, None).await
}

/// As `connect`, the server closing the tunnel at `deadline`.
async fn connect_until(
    tunnels: &Tunnels,
    node: &'static str,
    app: Router,
    deadline: Option<Instant>,
) -> Agent {
    let (server_end, agent_end) = tokio::io::duplex(64 << 10);
    let stop = CancellationToken::new();
    let serving = tokio::spawn(serve(agent_end, app, stop.clone()));
    let (opened, open) = oneshot::channel();
    let registry = tunnels.clone();
    let attached = tokio::spawn(async move {
        let ending = async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
            "its deadline passed".to_string()
        };
        let attach = registry.attach_until(node, TokioIo::new(server_end), ending);
        let _ = opened.send(());
        let _ = attach.await;
    });
    open.await.expect("attach started");
    Agent {
        serving,
        stop,
        attached,
    }
}

/// The tunnel of `node`, waited for.
async fn tunnel(tunnels: &Tunnels, node: &str) -> Tunnel {
    for _ in 0..1000 {
        if let Some(tunnel) = tunnels.get(node) {
            return tunnel;
        }
        tokio::task::yield_now().await;
    }
    panic!("no tunnel for {node}");
}

fn get_request(path: &str) -> Request<Body> {
    Request::get(format!("http://n1{path}"))
        .body(Body::empty())
        .expect("request")
}

async fn text(tunnel: &Tunnel, path: &str) -> String {
    let response = tunnel.send(get_request(path)).await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body = response.into_body().collect().await.expect("body");
    String::from_utf8(body.to_bytes().to_vec()).expect("utf-8")
}

#[tokio::test]
async fn many_requests_share_one_tunnel() {
    let tunnels = Tunnels::new();
    let _agent = connect(&tunnels, "n1", agent_app("a")).await;
    let tunnel = tunnel(&tunnels, "n1").await;
    let answers = futures::future::join_all((0..64).map(|n| {
        let tunnel = tunnel.clone();
        async move { text(&tunnel, &format!("/echo/{n}")).await }
    }))
    .await;
    let expected: Vec<String> = (0..64).map(|n: u32| n.to_string()).collect();
    assert_eq!(answers, expected);
    assert!(tunnels.get("n2").is_none(), "no tunnel for another node");
}

#[tokio::test]
async fn a_stream_arrives_while_it_is_written() {
    let tunnels = Tunnels::new();
    let _agent = connect(&tunnels, "n1", agent_app("a")).await;
    let tunnel = tunnel(&tunnels, "n1").await;
    let response = tunnel.send(get_request("/follow")).await.expect("sent");
    let mut body = response.into_body();
    let mut seen = String::new();
    while seen.lines().count() < 3 {
        let frame = body.frame().await.expect("a frame").expect("data");
        if let Ok(data) = frame.into_data() {
            seen.push_str(std::str::from_utf8(&data).expect("utf-8"));
        }
    }
    // The body never ends: the lines came while it was still open.
    assert_eq!(seen, "line 0\nline 1\nline 2\n");
    // Another request is served while that stream stays open.
    assert_eq!(text(&tunnel, "/echo/7").await, "7");
}

#[tokio::test]
async fn streams_left_unread_do_not_hold_up_the_others() {
    let tunnels = Tunnels::new();
    let _agent = connect(&tunnels, "n1", agent_app("a")).await;
    let tunnel = tunnel(&tunnels, "n1").await;
    // Eight answers of 8 MiB each, none read: more than HTTP/2's default connection window.
    let mut unread = Vec::new();
    for _ in 0..8 {
        unread.push(tunnel.send(get_request("/big")).await.expect("sent"));
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let answered = tokio::time::timeout(Duration::from_secs(10), text(&tunnel, "/echo/1")).await;
    assert_eq!(answered.expect("answered while others stall"), "1");
    // Each stalled stream is still whole when it is read.
    let body = unread.pop().expect("one").into_body().collect().await;
    assert_eq!(body.expect("body").to_bytes().len(), 8 << 20);
}

#[tokio::test]
async fn websockets_ride_extended_connect() {
    let tunnels = Tunnels::new();
    let _agent = connect(&tunnels, "n1", agent_app("a")).await;
    let tunnel = tunnel(&tunnels, "n1").await;
    // The agent's SETTINGS (extended CONNECT enabled) must have arrived first.
    assert_eq!(text(&tunnel, "/name").await, "a");
    let request = Request::builder()
        .method(Method::CONNECT)
        .uri("http://n1/ws")
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .body(Body::empty())
        .expect("request");
    let mut response = tunnel.send(request).await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = hyper::upgrade::on(&mut response).await.expect("upgraded");
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    socket.send(Message::text("hi")).await.expect("sent");
    let reply = socket.next().await.expect("a reply").expect("message");
    assert_eq!(reply, Message::text("echo hi"));
}

#[tokio::test]
async fn a_newer_tunnel_replaces_the_older() {
    let tunnels = Tunnels::new();
    let first = connect(&tunnels, "n1", agent_app("first")).await;
    assert_eq!(text(&tunnel(&tunnels, "n1").await, "/name").await, "first");
    let second = connect(&tunnels, "n1", agent_app("second")).await;
    // The older connection closes once the server lets go of it.
    let closed = async {
        let _ = first.serving.await.expect("joined");
        first.attached.await.expect("joined");
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the older tunnel closes");
    assert_eq!(text(&tunnel(&tunnels, "n1").await, "/name").await, "second");
    // The older one's end does not remove the newer one.
    assert!(tunnels.get("n1").is_some());
    second.stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), second.attached)
        .await
        .expect("the tunnel closes when its agent stops")
        .expect("joined");
    assert!(tunnels.get("n1").is_none(), "a closed tunnel is forgotten");
}

/// On a paused clock: the deadline passes when the test has nothing else to do.
#[tokio::test(start_paused = true)]
async fn a_tunnel_closes_at_its_deadline_and_leaves_a_newer_one() {
    let tunnels = Tunnels::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    let first = connect_until(&tunnels, "n1", agent_app("first"), Some(deadline)).await;
    let older = tunnel(&tunnels, "n1").await;
    assert_eq!(text(&older, "/name").await, "first");
    // A stream held open keeps the older connection up after a newer one replaces it.
    let held = older.send(get_request("/follow")).await.expect("sent");
    let second = connect(&tunnels, "n1", agent_app("second")).await;
    assert_eq!(text(&tunnel(&tunnels, "n1").await, "/name").await, "second");
    let closed = async {
        let _ = first.serving.await.expect("joined");
        first.attached.await.expect("joined");
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the tunnel closes at its deadline");
    assert!(Instant::now() >= deadline, "closed before its deadline");
    let cut = held.into_body().collect().await;
    assert!(cut.is_err(), "a stream in flight ends with the tunnel");
    // The newer tunnel stays registered and serves.
    assert_eq!(text(&tunnel(&tunnels, "n1").await, "/name").await, "second");
    second.stop.cancel();
}

/// On a paused clock: the deadline passes when the test has nothing else to do.
#[tokio::test(start_paused = true)]
async fn a_lone_tunnel_past_its_deadline_is_forgotten() {
    let tunnels = Tunnels::new();
    let deadline = Instant::now() + Duration::from_millis(300);
    let agent = connect_until(&tunnels, "n1", agent_app("a"), Some(deadline)).await;
    assert_eq!(text(&tunnel(&tunnels, "n1").await, "/name").await, "a");
    tokio::time::timeout(Duration::from_secs(10), agent.attached)
        .await
        .expect("the tunnel closes at its deadline")
        .expect("joined");
    let served = tokio::time::timeout(Duration::from_secs(10), agent.serving)
        .await
        .expect("the agent's end sees it close")
        .expect("joined");
    drop(served);
    assert!(
        tunnels.get("n1").is_none(),
        "an expired tunnel is forgotten"
    );
}
