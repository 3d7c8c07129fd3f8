//! A served router under hostile clients: idle and slow-header connections are closed, a
//! flood of idle connections beyond the limit does not stop requests, and a long response
//! (a watch) is never cut by the idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use skiff_net::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const IDLE: Duration = Duration::from_secs(60);

/// A server with `/ok`, `/pause` (answers after 5 s) and `/watch` (a body that takes ten idle
/// timeouts to finish).
async fn start(max_connections: usize) -> (SocketAddr, CancellationToken) {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/pause",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "paused"
            }),
        )
        .route("/watch", get(|| async { Body::from_stream(slow_events()) }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let limits = ConnLimits {
        max_connections,
        idle_timeout: IDLE,
    };
    tokio::spawn(skiff_net::http::serve(listener, app, limits, stop.clone()));
    (addr, stop)
}

/// "first\n", then, ten idle timeouts later, "last\n".
fn slow_events() -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0, |step| async move {
        match step {
            0 => Some((Ok(Bytes::from("first\n")), 1)),
            1 => {
                tokio::time::sleep(IDLE * 10).await;
                Some((Ok(Bytes::from("last\n")), 2))
            }
            _ => None,
        }
    })
}

/// Reads until the server closes the connection; returns what was read.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let _ = stream.read_to_end(&mut read).await;
    String::from_utf8_lossy(&read).into_owned()
}

/// One request on a new connection.
async fn get_once(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut stream).await
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let (addr, _stop) = start(16).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    assert_eq!(read_until_closed(&mut idle).await, "");
    assert_eq!(start.elapsed().as_secs(), IDLE.as_secs());
}

#[tokio::test(start_paused = true)]
async fn a_slow_header_connection_is_closed_after_the_idle_timeout() {
    let (addr, _stop) = start(16).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    tokio::time::sleep(IDLE / 2).await;
    slow.write_all(b"st\r\nX-Slow: 1\r\n").await.unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(
        !answer.contains(" 200 "),
        "a slow header was answered: {answer}"
    );
    assert_eq!(start.elapsed().as_secs(), IDLE.as_secs());
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_is_closed_once_idle() {
    let (addr, _stop) = start(16).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let response = read_until_closed(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(start.elapsed().as_secs(), IDLE.as_secs());
}

#[tokio::test(start_paused = true)]
async fn a_watch_outlives_the_idle_timeout() {
    let (addr, _stop) = start(16).await;
    let start = Instant::now();
    let response = get_once(addr, "/watch").await;
    assert!(
        response.contains("first\n") && response.contains("last\n"),
        "{response}"
    );
    assert!(start.elapsed() >= IDLE * 10);
}

#[tokio::test(start_paused = true)]
async fn idle_connections_beyond_the_limit_do_not_stop_requests() {
    let (addr, _stop) = start(4).await;
    let mut flood = Vec::new();
    for _ in 0..16 {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    // A watch in flight holds its slot through the flood.
    let watch = tokio::spawn(get_once(addr, "/watch"));
    let start = Instant::now();
    for _ in 0..20 {
        let response = get_once(addr, "/ok").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert!(
        start.elapsed() < IDLE,
        "requests waited for idle connections to time out: {:?}",
        start.elapsed()
    );
    // The idle connections were closed, those that were accepted to make room and the rest.
    for mut idle in flood {
        assert_eq!(read_until_closed(&mut idle).await, "");
    }
    let watched = watch.await.unwrap();
    assert!(watched.contains("last\n"), "the watch was cut: {watched}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_busy_when_the_listener_filled_up_makes_room_once_idle() {
    let (addr, _stop) = start(1).await;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /pause HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // Let the server accept it and start the request.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    let response = get_once(addr, "/ok").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        start.elapsed() < IDLE,
        "waited for the idle timeout: {:?}",
        start.elapsed()
    );
    let answer = read_until_closed(&mut busy).await;
    assert!(
        answer.contains("paused"),
        "the busy request was cut: {answer}"
    );
}
