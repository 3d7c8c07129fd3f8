//! A session driven by the test client, forwarding to an echo in place of a pod.

use super::super::echo::{Echo, REFUSED};
use super::*;
use crate::http::spdy::frame::{Frame, REFUSED_STREAM};
use crate::http::spdy::test_client::{self, data, reply, Client};

/// A session forwarding to the echo.
fn start() -> Client {
    test_client::start(accept, |streams, sender| {
        forward_streams(streams, sender, Echo)
    })
}

/// Opens a connection's error and data streams, as kubectl does (error first, closed at once
/// by the client, which never writes to it).
fn open(client: &mut Client, request: &str, port: &str, error: u32, data: u32) {
    for (stream, kind) in [(error, STREAM_TYPE_ERROR), (data, STREAM_TYPE_DATA)] {
        client.open(
            stream,
            &[
                (STREAM_TYPE_HEADER, kind),
                (PORT_HEADER, port),
                (REQUEST_ID_HEADER, request),
            ],
        );
        if kind == STREAM_TYPE_ERROR {
            client.data(stream, b"", true);
        }
    }
}

#[tokio::test]
async fn a_connection_is_answered_echoed_half_closed_and_ended() {
    let mut client = start();
    open(&mut client, "0", "7000", 1, 3);
    assert_eq!(reply(&client.next().await), Some(1));
    assert_eq!(reply(&client.next().await), Some(3));
    client.data(3, b"hello", false);
    assert_eq!(client.next().await, data(3, b"hello", false));
    client.send(Frame::Ping { id: 7 });
    assert_eq!(client.next().await, Frame::Ping { id: 7 });
    // The client's half close ends the echo, and the server ends both streams.
    client.data(3, b"", true);
    assert_eq!(client.next().await, data(3, b"", true));
    assert_eq!(client.next().await, data(1, b"", true));
}

#[tokio::test]
async fn a_refused_port_is_reported_on_the_error_stream() {
    let mut client = start();
    open(&mut client, "4", "1", 5, 7);
    assert_eq!(reply(&client.next().await), Some(5));
    assert_eq!(reply(&client.next().await), Some(7));
    let Frame::Data {
        stream: 5,
        fin: false,
        data: message,
    } = client.next().await
    else {
        panic!("an error message on the error stream");
    };
    assert_eq!(message, REFUSED.as_bytes());
    assert_eq!(client.next().await, data(7, b"", true));
    assert_eq!(client.next().await, data(5, b"", true));
}

#[tokio::test]
async fn connections_are_paired_by_request_id_and_a_bad_port_is_named() {
    let mut client = start();
    open(&mut client, "a", "http", 9, 11);
    open(&mut client, "b", "7000", 13, 15);
    let mut replies = Vec::new();
    let mut error_text = None;
    let mut ends = Vec::new();
    client.data(15, b"second", false);
    let mut echoed = None;
    while replies.len() < 4 || error_text.is_none() || ends.len() < 2 || echoed.is_none() {
        match client.next().await {
            frame @ Frame::SynReply { .. } => replies.extend(reply(&frame)),
            Frame::Data {
                stream: 9,
                fin: false,
                data,
            } => error_text = Some(String::from_utf8_lossy(&data).into_owned()),
            Frame::Data {
                stream: 15,
                fin: false,
                data,
            } => echoed = Some(data),
            Frame::Data {
                stream, fin: true, ..
            } => ends.push(stream),
            other => panic!("unexpected {other:?}"),
        }
    }
    replies.sort_unstable();
    assert_eq!(replies, vec![9, 11, 13, 15]);
    assert!(error_text.expect("error").contains("\"http\""));
    ends.sort_unstable();
    assert_eq!(ends, vec![9, 11]);
    assert_eq!(echoed.as_deref(), Some(&b"second"[..]));
}

#[tokio::test]
async fn a_stream_without_a_request_id_is_refused() {
    let mut client = start();
    client.open(1, &[(STREAM_TYPE_HEADER, STREAM_TYPE_DATA)]);
    assert_eq!(
        client.next().await,
        Frame::RstStream {
            stream: 1,
            status: REFUSED_STREAM
        }
    );
}

#[tokio::test]
async fn a_headers_frame_keeps_the_header_compression_in_step() {
    let mut client = start();
    client.headers(1, &[("x-extra", "1")]);
    open(&mut client, "0", "7000", 3, 5);
    assert_eq!(reply(&client.next().await), Some(3));
    assert_eq!(reply(&client.next().await), Some(5));
    client.data(5, b"still in step", false);
    assert_eq!(client.next().await, data(5, b"still in step", false));
}
