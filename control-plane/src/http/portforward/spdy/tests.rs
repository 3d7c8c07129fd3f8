//! A session driven by a client built from the same frames and header blocks, forwarding to
//! an echo in place of a pod.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};

use super::super::echo::{Echo, REFUSED};
use super::*;

struct Client {
    to_server: UnboundedSender<Bytes>,
    from_server: UnboundedReceiver<Bytes>,
    buf: BytesMut,
    encoder: Encoder,
    decoder: Decoder,
}

impl Client {
    fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        frame::write(&frame, &mut buf);
        self.to_server
            .unbounded_send(buf.freeze())
            .expect("session up");
    }

    /// Opens a connection's error and data streams, as kubectl does (error first, closed at
    /// once by the client, which never writes to it).
    fn open(&mut self, request: &str, port: &str, error: u32, data: u32) {
        for (stream, kind) in [(error, STREAM_TYPE_ERROR), (data, STREAM_TYPE_DATA)] {
            let headers = self.encoder.encode(&[
                (STREAM_TYPE_HEADER, kind),
                (PORT_HEADER, port),
                (REQUEST_ID_HEADER, request),
            ]);
            self.send(Frame::SynStream {
                stream,
                fin: false,
                headers,
            });
            if kind == STREAM_TYPE_ERROR {
                self.data(stream, b"", true);
            }
        }
    }

    fn data(&mut self, stream: u32, data: &'static [u8], fin: bool) {
        self.send(Frame::Data {
            stream,
            fin,
            data: Bytes::from_static(data),
        });
    }

    async fn next(&mut self) -> Frame {
        loop {
            if let Some(frame) = frame::parse(&mut self.buf).expect("SPDY from the server") {
                if let Frame::SynReply { headers, .. } = &frame {
                    assert_eq!(self.decoder.decode(headers).expect("reply headers"), vec![]);
                }
                return frame;
            }
            let chunk = self.from_server.next().await.expect("session open");
            self.buf.extend_from_slice(&chunk);
        }
    }
}

fn start() -> Client {
    let (to_server, incoming) = unbounded();
    let (outgoing, from_server) = unbounded();
    tokio::spawn(serve(incoming, outgoing, Echo));
    Client {
        to_server,
        from_server,
        buf: BytesMut::new(),
        encoder: Encoder::default(),
        decoder: Decoder::default(),
    }
}

fn data(stream: u32, data: &'static [u8], fin: bool) -> Frame {
    Frame::Data {
        stream,
        fin,
        data: Bytes::from_static(data),
    }
}

fn reply(frame: &Frame) -> Option<u32> {
    match frame {
        Frame::SynReply { stream, fin, .. } if !fin => Some(*stream),
        _ => None,
    }
}

#[tokio::test]
async fn a_connection_is_answered_echoed_half_closed_and_ended() {
    let mut client = start();
    client.open("0", "7000", 1, 3);
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
    client.open("4", "1", 5, 7);
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
    client.open("a", "http", 9, 11);
    client.open("b", "7000", 13, 15);
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
    let headers = client
        .encoder
        .encode(&[(STREAM_TYPE_HEADER, STREAM_TYPE_DATA)]);
    client.send(Frame::SynStream {
        stream: 1,
        fin: false,
        headers,
    });
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
    let headers = client.encoder.encode(&[("x-extra", "1")]);
    client.send(Frame::Headers { stream: 1, headers });
    client.open("0", "7000", 3, 5);
    assert_eq!(reply(&client.next().await), Some(3));
    assert_eq!(reply(&client.next().await), Some(5));
    client.data(5, b"still in step", false);
    assert_eq!(client.next().await, data(5, b"still in step", false));
}
