//! A SPDY client for the endpoints' tests, built from the same frames and header blocks, on
//! a session served in the test's runtime.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::frame::{self, Frame};
use super::header_block::{Decoder, Encoder};
use super::{Headers, Sender, Stream};

/// The client's end of a session.
pub struct Client {
    to_server: UnboundedSender<Bytes>,
    from_server: UnboundedReceiver<Bytes>,
    buf: BytesMut,
    encoder: Encoder,
    decoder: Decoder,
}

/// Serves a session with `accept` and `endpoint` (as [`super::serve`]) and connects to it.
pub fn start<A, E, F>(accept: A, endpoint: E) -> Client
where
    A: Fn(&Headers) -> bool + Send + 'static,
    E: FnOnce(mpsc::Receiver<Stream>, Sender) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (to_server, incoming) = unbounded();
    let (outgoing, from_server) = unbounded();
    tokio::spawn(super::serve(incoming, outgoing, accept, endpoint));
    Client {
        to_server,
        from_server,
        buf: BytesMut::new(),
        encoder: Encoder::default(),
        decoder: Decoder::default(),
    }
}

impl Client {
    /// Sends one frame.
    pub fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        frame::write(&frame, &mut buf);
        self.send_raw(buf.freeze());
    }

    /// Sends `bytes` as they are.
    pub fn send_raw(&mut self, bytes: Bytes) {
        self.to_server.unbounded_send(bytes).expect("session up");
    }

    /// Opens `stream` with `headers`.
    pub fn open(&mut self, stream: u32, headers: &[(&str, &str)]) {
        self.open_with_fin(stream, false, headers);
    }

    /// Opens `stream` with `headers`; `fin` ends the client's side at once.
    pub fn open_with_fin(&mut self, stream: u32, fin: bool, headers: &[(&str, &str)]) {
        let headers = self.encoder.encode(headers);
        self.send(Frame::SynStream {
            stream,
            fin,
            headers,
        });
    }

    /// Ends the client's bytes, as a closed connection does.
    pub fn close(&mut self) {
        self.to_server.close_channel();
    }

    /// A header block on a stream that is not opened by it (it keeps the context in step).
    pub fn headers(&mut self, stream: u32, headers: &[(&str, &str)]) {
        let headers = self.encoder.encode(headers);
        self.send(Frame::Headers { stream, headers });
    }

    /// Sends `data` on `stream`; `fin` ends the client's side.
    pub fn data(&mut self, stream: u32, bytes: &'static [u8], fin: bool) {
        self.send(data(stream, bytes, fin));
    }

    /// The server's next frame (a reply's headers are checked to be empty), or `None` once
    /// the server closed the session.
    pub async fn next_or_end(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = frame::parse(&mut self.buf).expect("SPDY from the server") {
                if let Frame::SynReply { headers, .. } = &frame {
                    assert_eq!(self.decoder.decode(headers).expect("reply headers"), vec![]);
                }
                return Some(frame);
            }
            let chunk = self.from_server.next().await?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// The server's next frame.
    pub async fn next(&mut self) -> Frame {
        self.next_or_end().await.expect("session open")
    }
}

/// A data frame.
pub fn data(stream: u32, data: &'static [u8], fin: bool) -> Frame {
    Frame::Data {
        stream,
        fin,
        data: Bytes::from_static(data),
    }
}

/// The stream a frame answers, if it is a `SYN_REPLY` that keeps the stream open.
pub fn reply(frame: &Frame) -> Option<u32> {
    match frame {
        Frame::SynReply { stream, fin, .. } if !fin => Some(*stream),
        _ => None,
    }
}
