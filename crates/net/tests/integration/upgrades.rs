//! WebSocket upgrades through `serve`: an upgraded connection is served past the idle
//! timeout, keeps its slot (it is neither shed as idle nor replaced while open) and ends on
//! server shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use skiff_net::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as ClientMessage;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

const IDLE: Duration = Duration::from_secs(60);

async fn echo(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) || socket.send(message).await.is_err() {
                return;
            }
        }
    })
}

/// A server with `/echo` (a WebSocket echo) and `/ok`, and the task serving it.
async fn start(max_connections: usize) -> (SocketAddr, CancellationToken, JoinHandle<()>) {
    let app = Router::new()
        .route("/echo", get(echo))
        .route("/ok", get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let limits = ConnLimits {
        max_connections,
        idle_timeout: IDLE,
    };
    let served = tokio::spawn(skiff_net::http::serve(listener, app, limits, stop.clone()));
    (addr, stop, served)
}

async fn connect(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (socket, response) = tokio_tungstenite::client_async(format!("ws://{addr}/echo"), stream)
        .await
        .expect("the upgrade");
    assert_eq!(response.status(), 101);
    socket
}

async fn round_trip(socket: &mut WebSocketStream<TcpStream>, text: &str) {
    socket.send(ClientMessage::text(text)).await.unwrap();
    let answer = tokio::time::timeout(IDLE, socket.next())
        .await
        .expect("an answer in time")
        .expect("open")
        .expect("a message");
    assert_eq!(answer, ClientMessage::text(text));
}

async fn get_once(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = "GET /ok HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut read = Vec::new();
    let _ = stream.read_to_end(&mut read).await;
    String::from_utf8_lossy(&read).into_owned()
}

#[tokio::test(start_paused = true)]
async fn an_upgraded_connection_outlives_the_idle_timeout_and_keeps_its_slot() {
    let (addr, _stop, _served) = start(1).await;
    let mut socket = connect(addr).await;
    round_trip(&mut socket, "first").await;
    tokio::time::sleep(IDLE * 3).await;
    round_trip(&mut socket, "after three idle timeouts").await;

    // The only slot is the WebSocket's: another client waits, and the full listener's
    // pressure does not shed the WebSocket as an idle connection.
    let waiting = tokio::spawn(get_once(addr));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!waiting.is_finished(), "served while the slot was taken");
    round_trip(&mut socket, "still open").await;

    socket.close(None).await.unwrap();
    let answer = tokio::time::timeout(IDLE, waiting)
        .await
        .expect("served once the WebSocket closed")
        .unwrap();
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_an_upgraded_connection() {
    let (addr, stop, served) = start(4).await;
    let mut socket = connect(addr).await;
    round_trip(&mut socket, "hello").await;
    stop.cancel();
    tokio::time::timeout(IDLE, served)
        .await
        .expect("serve returns once the WebSocket ended")
        .unwrap();
    let end = tokio::time::timeout(IDLE, socket.next())
        .await
        .expect("the WebSocket ends");
    assert!(!matches!(end, Some(Ok(ClientMessage::Text(_)))), "{end:?}");
}
