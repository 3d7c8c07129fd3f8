//! The server side of SPDY/3.1 sessions as Kubernetes' streaming endpoints use them (what
//! kubectl and the kubelet speak through spdystream): the client opens streams, each named by
//! its headers, the server answers each it accepts with a `SYN_REPLY` (or refuses it with
//! `RST_STREAM`) and hands it to the endpoint with the client's bytes on it, and the endpoint
//! writes back on any stream and ends it with `FIN`. `PING`s are answered; a `GOAWAY` refuses
//! the streams opened after it while those open go on (spdystream's `Close` sends it, then
//! waits for its streams); flow control is not enforced (spdystream does not enforce it
//! either). One reader serves the session: a
//! stream whose endpoint reads slower than its client writes holds up the session's other
//! streams until its queue drains.

pub mod frame;
mod header_block;
#[cfg(test)]
pub mod test_client;
#[cfg(test)]
mod tests;
pub mod upgrade;

use std::collections::HashMap;
use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream as FuturesStream, StreamExt};
use tokio::sync::mpsc;

use self::frame::{Frame, REFUSED_STREAM};
pub use self::header_block::Headers;
use self::header_block::{Decoder, Encoder};

/// The largest data frame this server sends (spdystream's own size).
const MAX_DATA_FRAME: usize = 32 << 10;

/// Frames queued for the writer, streams queued for the endpoint and client data queued per
/// stream.
const QUEUE: usize = 64;

/// A stream the client opened and the session accepted.
pub struct Stream {
    /// The stream's id, which [`Sender`] writes to.
    pub id: u32,
    /// Its headers, names lowercase.
    pub headers: Headers,
    /// The client's bytes on it; the end is the client's `FIN` (or the session's end).
    pub data: mpsc::Receiver<Bytes>,
}

impl Stream {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The value of header `name` in `headers`.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What the session's parts ask the writer to send.
enum Out {
    Reply(u32),
    Frame(Frame),
}

/// Writes on a session's streams; cloned freely. Each call returns whether the session is
/// still up.
#[derive(Clone)]
pub struct Sender {
    out: mpsc::Sender<Out>,
}

impl Sender {
    /// Sends `bytes` on `stream`, in frames of at most 32 KiB.
    pub async fn data(&self, stream: u32, bytes: Bytes) -> bool {
        for start in (0..bytes.len()).step_by(MAX_DATA_FRAME) {
            let end = bytes.len().min(start + MAX_DATA_FRAME);
            if !self.frame(stream, bytes.slice(start..end), false).await {
                return false;
            }
        }
        true
    }

    /// Ends the server's side of `stream` (`FIN`).
    pub async fn finish(&self, stream: u32) -> bool {
        self.frame(stream, Bytes::new(), true).await
    }

    async fn frame(&self, stream: u32, data: Bytes, fin: bool) -> bool {
        let frame = Frame::Data { stream, fin, data };
        self.out.send(Out::Frame(frame)).await.is_ok()
    }
}

/// Serves one session: SPDY bytes from `incoming`, to `outgoing`. Streams whose headers
/// `accept` approves go to `endpoint` as they are opened, the others are refused. The
/// session lasts until the client goes away (end of input, a read error or bytes that are
/// not SPDY/3, after which `endpoint` is dropped) or `endpoint` returns (after which
/// what it sent is written and the connection is closed).
pub async fn serve<I, O, A, E, F>(incoming: I, outgoing: O, accept: A, endpoint: E)
where
    I: FuturesStream<Item = Bytes> + Unpin,
    O: Sink<Bytes> + Unpin,
    A: Fn(&Headers) -> bool,
    E: FnOnce(mpsc::Receiver<Stream>, Sender) -> F,
    F: Future<Output = ()>,
{
    let (out, queued) = mpsc::channel::<Out>(QUEUE);
    let (streams, opened) = mpsc::channel(QUEUE);
    let serving = endpoint(opened, Sender { out: out.clone() });
    let session = async move {
        tokio::select! {
            () = read_frames(incoming, accept, streams, out) => {}
            () = serving => {}
        }
    };
    tokio::join!(session, write_frames(queued, outgoing));
}

/// Reads the client's frames until it goes away, opening streams and routing their data.
async fn read_frames<I, A>(
    mut incoming: I,
    accept: A,
    streams: mpsc::Sender<Stream>,
    out: mpsc::Sender<Out>,
) where
    I: FuturesStream<Item = Bytes> + Unpin,
    A: Fn(&Headers) -> bool,
{
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::default();
    let mut client_data: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut gone_away = false;
    while let Some(chunk) = incoming.next().await {
        buf.extend_from_slice(&chunk);
        loop {
            let frame = match frame::parse(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(%err, "SPDY session ends");
                    return;
                }
            };
            match frame {
                Frame::SynStream {
                    stream,
                    fin,
                    headers,
                } => {
                    let headers = match decoder.decode(&headers) {
                        Ok(headers) => headers,
                        Err(err) => {
                            tracing::debug!(%err, "SPDY session ends");
                            return;
                        }
                    };
                    if gone_away || !accept(&headers) {
                        let status = REFUSED_STREAM;
                        let _ = out
                            .send(Out::Frame(Frame::RstStream { stream, status }))
                            .await;
                        continue;
                    }
                    let _ = out.send(Out::Reply(stream)).await;
                    let (sender, data) = mpsc::channel(QUEUE);
                    // A stream opened with FIN carries nothing from the client: its data ends.
                    if !fin {
                        client_data.insert(stream, sender);
                    }
                    let opened = Stream {
                        id: stream,
                        headers,
                        data,
                    };
                    if streams.send(opened).await.is_err() {
                        client_data.remove(&stream);
                    }
                }
                Frame::Data { stream, fin, data } => {
                    if !data.is_empty() {
                        if let Some(sender) = client_data.get(&stream) {
                            if sender.send(data).await.is_err() {
                                client_data.remove(&stream);
                            }
                        }
                    }
                    if fin {
                        client_data.remove(&stream);
                    }
                }
                Frame::RstStream { stream, .. } => {
                    client_data.remove(&stream);
                }
                Frame::Ping { id } => {
                    let _ = out.send(Out::Frame(Frame::Ping { id })).await;
                }
                Frame::GoAway { .. } => gone_away = true,
                // Their header blocks advance the shared compression context.
                Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
                    if let Err(err) = decoder.decode(&headers) {
                        tracing::debug!(%err, "SPDY session ends");
                        return;
                    }
                }
                Frame::Ignored => {}
            }
        }
    }
}

/// Sends what the session's parts queue, encoding replies' header blocks in order, several
/// frames to a write when they are queued together; closes `outgoing` once every sender is
/// gone.
async fn write_frames<O: Sink<Bytes> + Unpin>(mut queued: mpsc::Receiver<Out>, mut outgoing: O) {
    let mut encoder = Encoder::default();
    let mut batch = Vec::new();
    while queued.recv_many(&mut batch, QUEUE).await > 0 {
        let mut buf = BytesMut::new();
        for out in batch.drain(..) {
            let frame = match out {
                Out::Reply(stream) => Frame::SynReply {
                    stream,
                    fin: false,
                    headers: encoder.encode(&[]),
                },
                Out::Frame(frame) => frame,
            };
            frame::write(&frame, &mut buf);
        }
        if outgoing.send(buf.freeze()).await.is_err() {
            return;
        }
    }
    let _ = outgoing.close().await;
}
