use futures::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::WebSocketStream;

use super::*;

const PATH: &str = "/api/v1/namespaces/default/pods/web/portforward?ports=80";

#[test]
fn announcements_are_checked_and_stripped() {
    let mut channels = Channels::new(80);
    let read = |channels: &mut Channels, message: &[u8]| {
        channels.read(Bytes::copy_from_slice(message)).unwrap()
    };
    assert_eq!(read(&mut channels, &[0, 80, 0]), Incoming::Nothing);
    assert_eq!(
        read(&mut channels, b"\0hi"),
        Incoming::Data(Bytes::from_static(b"hi"))
    );
    assert_eq!(
        read(&mut channels, b"\x01\x50\0boom"),
        Incoming::Error("boom".into())
    );
    assert_eq!(read(&mut channels, &[255, 1]), Incoming::Nothing);
    assert_eq!(read(&mut channels, &[255, 0]), Incoming::End);

    let wrong = Channels::new(81).read(Bytes::from_static(&[0, 80, 0]));
    assert!(wrong.unwrap_err().to_string().contains("port 80, not 81"));
    let short = Channels::new(80).read(Bytes::from_static(&[1, 80]));
    assert!(short.unwrap_err().to_string().contains("not a port"));
}

/// A client of a server at 127.0.0.1, and the server's listener.
async fn listen() -> (Client, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (Client::new(&[url]).unwrap(), listener)
}

/// The server's side of the upgrade to a port-forward WebSocket to pod `web`, port 80: it
/// answers with the subprotocol, or refuses with the status code and `Status` given.
struct Upgrade(Option<(StatusCode, &'static str)>);

impl Callback for Upgrade {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        assert_eq!(request.uri(), PATH);
        let protocol = request.headers()["Sec-WebSocket-Protocol"].clone();
        assert_eq!(protocol, WEBSOCKET_PROTOCOL_V5);
        if let Some((code, status)) = self.0 {
            let mut refusal = ErrorResponse::new(Some(status.to_string()));
            *refusal.status_mut() = code;
            return Err(refusal);
        }
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol);
        Ok(response)
    }
}

/// Accepts one port-forward WebSocket and announces the port.
async fn accept(listener: TcpListener) -> WebSocketStream<TcpStream> {
    let (tcp, _) = listener.accept().await.unwrap();
    let mut socket = tokio_tungstenite::accept_hdr_async(tcp, Upgrade(None))
        .await
        .unwrap();
    for channel in [0, 1] {
        send(&mut socket, &portforward::port_message(channel, 80)).await;
    }
    socket
}

async fn send(socket: &mut WebSocketStream<TcpStream>, message: &[u8]) {
    let message = Message::Binary(Bytes::copy_from_slice(message));
    socket.send(message).await.unwrap();
}

async fn receive(socket: &mut WebSocketStream<TcpStream>) -> Bytes {
    match socket.next().await {
        Some(Ok(Message::Binary(data))) => data,
        other => panic!("expected a binary message, got {other:?}"),
    }
}

#[tokio::test]
async fn bytes_pass_both_ways_and_a_shutdown_half_closes() {
    let (client, listener) = listen().await;
    let server = tokio::spawn(async move {
        let mut socket = accept(listener).await;
        assert_eq!(receive(&mut socket).await, &b"\0ping"[..]);
        assert_eq!(receive(&mut socket).await, &[255, 0][..]);
        send(&mut socket, b"\0pong").await;
        socket.close(None).await.unwrap();
    });
    let mut stream = client.port_forward("default", "web", 80).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"pong");
    server.await.unwrap();
}

#[tokio::test]
async fn the_servers_close_signal_ends_reading() {
    let (client, listener) = listen().await;
    let server = tokio::spawn(async move {
        let mut socket = accept(listener).await;
        send(&mut socket, b"\0bye").await;
        send(&mut socket, &[255, 0]).await;
        // Writing goes on after the server's half close.
        assert_eq!(receive(&mut socket).await, &b"\0late"[..]);
    });
    let mut stream = client.port_forward("default", "web", 80).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"bye");
    stream.write_all(b"late").await.unwrap();
    stream.flush().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn the_servers_error_message_fails_the_read() {
    let (client, listener) = listen().await;
    let server = tokio::spawn(async move {
        let mut socket = accept(listener).await;
        send(&mut socket, b"\x01connection refused").await;
        socket.close(None).await.unwrap();
    });
    let mut stream = client.port_forward("default", "web", 80).await.unwrap();
    let failed = stream.read_to_end(&mut Vec::new()).await.unwrap_err();
    assert_eq!(failed.to_string(), "connection refused");
    server.await.unwrap();
}

#[tokio::test]
async fn a_refusal_before_the_upgrade_is_the_servers_status() {
    let (client, listener) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"web\" not found","reason":"NotFound","code":404}"#;
        let refusal = Upgrade(Some((StatusCode::NOT_FOUND, status)));
        let _ = tokio_tungstenite::accept_hdr_async(tcp, refusal).await;
    });
    let refused = client.port_forward("default", "web", 80).await;
    let error = refused.err().expect("refused");
    assert!(error.is_not_found());
    assert_eq!(error.to_string(), "pods \"web\" not found");
    server.await.unwrap();
}
