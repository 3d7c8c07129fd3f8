//! The server side of a SPDY/3.1 port-forward session (what kubectl speaks, over an HTTP
//! upgrade or tunnelled in a WebSocket): the client opens a data and an error stream per
//! local connection, paired by their `requestid` header; each is answered with a
//! `SYN_REPLY`, and once both are open the connection is forwarded to the stream's `port`.
//! The pod's bytes come back on the data stream and an error as text on the error stream;
//! both then end with `FIN`. A client's `FIN` on the data stream is a half close passed on to
//! the pod. `PING`s are answered; flow control is not enforced (as spdystream, which kubectl
//! and the kubelet use, does not). One reader serves the session: a connection whose pod
//! reads slower than its client writes holds up the session's other connections until its
//! queue drains.

mod frame;
mod header_block;

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use skiff_api::portforward::{
    PORT_HEADER, REQUEST_ID_HEADER, STREAM_TYPE_DATA, STREAM_TYPE_ERROR, STREAM_TYPE_HEADER,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::frame::{Frame, REFUSED_STREAM};
use self::header_block::{Decoder, Encoder};
use super::forward::{Event, Forwarder};

/// The largest data frame this server sends (spdystream's own size).
const MAX_DATA_FRAME: usize = 32 << 10;

/// Frames queued for the writer, and client data queued per stream.
const QUEUE: usize = 64;

/// What the session's tasks ask the writer to send.
enum Out {
    Reply(u32),
    Frame(Frame),
}

/// One half of a connection's pair of streams, while the other is awaited.
#[derive(Default)]
struct Pair {
    data: Option<(u32, mpsc::Receiver<Bytes>)>,
    error: Option<u32>,
    port: Option<String>,
}

/// Serves one session: SPDY bytes from `incoming`, to `outgoing`, until the client goes away
/// (end of input, a read error, `GOAWAY` or bytes that are not SPDY/3).
pub async fn serve<I, O, F>(mut incoming: I, outgoing: O, forwarder: F)
where
    I: Stream<Item = Bytes> + Unpin,
    O: Sink<Bytes> + Unpin,
    F: Forwarder,
{
    let (out, queued) = mpsc::channel::<Out>(QUEUE);
    let reading = async move {
        let mut buf = BytesMut::new();
        let mut decoder = Decoder::default();
        let mut pairs: HashMap<String, Pair> = HashMap::new();
        let mut client_data: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
        let mut connections = JoinSet::new();
        'session: while let Some(chunk) = incoming.next().await {
            buf.extend_from_slice(&chunk);
            loop {
                let frame = match frame::parse(&mut buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(%err, "port-forward session ends");
                        break 'session;
                    }
                };
                match frame {
                    Frame::SynStream {
                        stream, headers, ..
                    } => {
                        while connections.try_join_next().is_some() {}
                        let headers = match decoder.decode(&headers) {
                            Ok(headers) => headers,
                            Err(err) => {
                                tracing::debug!(%err, "port-forward session ends");
                                break 'session;
                            }
                        };
                        let header = |name: &str| {
                            headers
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.clone())
                        };
                        let kind = header(STREAM_TYPE_HEADER)
                            .filter(|k| k == STREAM_TYPE_DATA || k == STREAM_TYPE_ERROR);
                        let (Some(kind), Some(request)) = (kind, header(REQUEST_ID_HEADER)) else {
                            let reset = Frame::RstStream {
                                stream,
                                status: REFUSED_STREAM,
                            };
                            let _ = out.send(Out::Frame(reset)).await;
                            continue;
                        };
                        let _ = out.send(Out::Reply(stream)).await;
                        let pair = pairs.entry(request.clone()).or_default();
                        pair.port = pair.port.take().or(header(PORT_HEADER));
                        if kind == STREAM_TYPE_DATA {
                            let (sender, receiver) = mpsc::channel(QUEUE);
                            client_data.insert(stream, sender);
                            pair.data = Some((stream, receiver));
                        } else {
                            pair.error = Some(stream);
                        }
                        if pair.data.is_some() && pair.error.is_some() {
                            let pair = pairs.remove(&request).expect("just seen");
                            let (data, from_client) = pair.data.expect("checked");
                            let error = pair.error.expect("checked");
                            connections.spawn(connection(
                                forwarder.clone(),
                                pair.port.unwrap_or_default(),
                                (data, error),
                                from_client,
                                out.clone(),
                            ));
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
                    Frame::GoAway { .. } => break 'session,
                    // Their header blocks advance the shared compression context.
                    Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
                        if let Err(err) = decoder.decode(&headers) {
                            tracing::debug!(%err, "port-forward session ends");
                            break 'session;
                        }
                    }
                    Frame::Ignored => {}
                }
            }
        }
        // Dropping the connections and `out` ends the writer.
        drop(connections);
        drop(out);
    };
    let writing = write_frames(queued, outgoing);
    tokio::join!(reading, writing);
}

/// Sends what the session's tasks queue, encoding replies' header blocks in order, several
/// frames to a write when they are queued together.
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

/// Forwards one client connection (its data and error streams) and ends both streams.
async fn connection<F: Forwarder>(
    forwarder: F,
    port: String,
    (data, error): (u32, u32),
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Out>,
) {
    let send = |stream, data: Bytes, fin| {
        let out = out.clone();
        async move {
            let frame = Frame::Data { stream, fin, data };
            out.send(Out::Frame(frame)).await.is_ok()
        }
    };
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {
            let (to_client, mut events) = mpsc::channel(QUEUE);
            let forwarding = forwarder.forward(port, from_client, to_client);
            let passing = async {
                while let Some(event) = events.recv().await {
                    let delivered = match event {
                        Event::Data(bytes) => {
                            let mut ok = true;
                            for start in (0..bytes.len()).step_by(MAX_DATA_FRAME) {
                                let end = bytes.len().min(start + MAX_DATA_FRAME);
                                ok = ok && send(data, bytes.slice(start..end), false).await;
                            }
                            ok
                        }
                        Event::Error(message) => send(error, Bytes::from(message), false).await,
                    };
                    if !delivered {
                        return;
                    }
                }
            };
            tokio::join!(forwarding, passing);
        }
        _ => {
            let message = format!("invalid port {port:?}: a port is a number from 1 to 65535");
            send(error, Bytes::from(message), false).await;
        }
    }
    send(data, Bytes::new(), true).await;
    send(error, Bytes::new(), true).await;
}

#[cfg(test)]
mod tests;
