//! The session on its own, against the test client: what it answers, which streams it
//! accepts, and which side ends it.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::frame::{Frame, REFUSED_STREAM};
use super::test_client::{self, data, reply, Client};
use super::{header, Headers, Sender, Stream};

/// Accepts streams that carry a `streamtype` header.
fn typed(headers: &Headers) -> bool {
    header(headers, "streamtype").is_some()
}

/// Sends each stream's bytes back on it and ends it when the client ends it.
async fn echo(mut streams: mpsc::Receiver<Stream>, sender: Sender) {
    while let Some(mut stream) = streams.recv().await {
        let sender = sender.clone();
        tokio::spawn(async move {
            while let Some(bytes) = stream.data.recv().await {
                sender.data(stream.id, bytes).await;
            }
            sender.finish(stream.id).await;
        });
    }
}

fn echoing() -> Client {
    test_client::start(typed, echo)
}

fn fin(stream: u32) -> Frame {
    data(stream, b"", true)
}

#[tokio::test]
async fn pings_are_echoed() {
    let mut client = echoing();
    client.send(Frame::Ping { id: 7 });
    assert_eq!(client.next().await, Frame::Ping { id: 7 });
}

#[tokio::test]
async fn a_stream_not_accepted_is_refused_and_the_session_goes_on() {
    let mut client = echoing();
    client.open(1, &[("other", "x")]);
    let refused = Frame::RstStream {
        stream: 1,
        status: REFUSED_STREAM,
    };
    assert_eq!(client.next().await, refused);
    client.open(3, &[("streamtype", "data")]);
    assert_eq!(reply(&client.next().await), Some(3));
    client.data(3, b"ok", true);
    assert_eq!(client.next().await, data(3, b"ok", false));
    assert_eq!(client.next().await, fin(3));
}

#[tokio::test]
async fn goaway_refuses_new_streams_while_open_ones_go_on() {
    let mut client = echoing();
    client.open(1, &[("streamtype", "data")]);
    assert_eq!(reply(&client.next().await), Some(1));
    client.send(Frame::GoAway { last_stream: 0 });
    client.open(3, &[("streamtype", "data")]);
    let refused = Frame::RstStream {
        stream: 3,
        status: REFUSED_STREAM,
    };
    assert_eq!(client.next().await, refused);
    client.data(1, b"after goaway", true);
    assert_eq!(client.next().await, data(1, b"after goaway", false));
    assert_eq!(client.next().await, fin(1));
}

#[tokio::test]
async fn a_stream_opened_with_fin_carries_no_client_data() {
    let mut client = echoing();
    client.open_with_fin(1, true, &[("streamtype", "error")]);
    assert_eq!(reply(&client.next().await), Some(1));
    // The echo ends the stream at once: its client data has ended.
    assert_eq!(client.next().await, fin(1));
}

#[tokio::test]
async fn the_endpoints_return_closes_the_session_after_what_it_sent() {
    let mut client = test_client::start(
        typed,
        |mut streams: mpsc::Receiver<Stream>, sender| async move {
            let stream = streams.recv().await.expect("a stream");
            sender.data(stream.id, Bytes::from_static(b"last")).await;
        },
    );
    client.open(1, &[("streamtype", "data")]);
    assert_eq!(reply(&client.next().await), Some(1));
    assert_eq!(client.next().await, data(1, b"last", false));
    assert_eq!(client.next_or_end().await, None);
}

#[tokio::test]
async fn the_clients_end_drops_the_endpoint() {
    let (dropped, endpoint_gone) = oneshot::channel::<()>();
    let mut client = test_client::start(typed, |_streams, _sender| async move {
        let _held = dropped;
        std::future::pending::<()>().await;
    });
    client.close();
    assert!(endpoint_gone.await.is_err(), "the endpoint was dropped");
    assert_eq!(client.next_or_end().await, None);
}

#[tokio::test]
async fn bytes_that_are_not_spdy_end_the_session() {
    let mut client = echoing();
    client.open(1, &[("streamtype", "data")]);
    assert_eq!(reply(&client.next().await), Some(1));
    client.send_raw(Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"));
    // The open stream's data ends with the session, which the echo answers with its FIN.
    while let Some(frame) = client.next_or_end().await {
        assert_eq!(frame, fin(1));
    }
}
