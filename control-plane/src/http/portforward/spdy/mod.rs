//! Port forwarding over a SPDY/3.1 session (kubectl's, over an HTTP upgrade or tunnelled in a
//! WebSocket): the client opens a data and an error stream per local connection, paired by
//! their `requestid` header, and once both are open the connection is forwarded to the
//! stream's `port`. The pod's bytes come back on the data stream and an error as text on the
//! error stream; both then end with `FIN`. A client's `FIN` on the data stream is a half
//! close passed on to the pod.

use std::collections::HashMap;

use bytes::Bytes;
use futures::{Sink, Stream as FuturesStream};
use skiff_api::portforward::{
    PORT_HEADER, REQUEST_ID_HEADER, STREAM_TYPE_DATA, STREAM_TYPE_ERROR, STREAM_TYPE_HEADER,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::super::spdy::{self, Headers, Sender, Stream};
use super::forward::{Event, Forwarder};

/// Pod bytes queued per connection.
const QUEUE: usize = 64;

/// One half of a connection's pair of streams, while the other is awaited.
#[derive(Default)]
struct Pair {
    data: Option<(u32, mpsc::Receiver<Bytes>)>,
    error: Option<u32>,
    port: Option<String>,
}

/// Serves one port-forward session: SPDY bytes from `incoming`, to `outgoing`, until the
/// client goes away.
pub async fn serve<I, O, F>(incoming: I, outgoing: O, forwarder: F)
where
    I: FuturesStream<Item = Bytes> + Unpin,
    O: Sink<Bytes> + Unpin,
    F: Forwarder,
{
    spdy::serve(incoming, outgoing, accept, |streams, sender| {
        forward_streams(streams, sender, forwarder)
    })
    .await;
}

/// Whether a stream is one of a connection's pair.
pub fn accept(headers: &Headers) -> bool {
    let kind = spdy::header(headers, STREAM_TYPE_HEADER);
    matches!(kind, Some(STREAM_TYPE_DATA | STREAM_TYPE_ERROR))
        && spdy::header(headers, REQUEST_ID_HEADER).is_some()
}

/// Pairs the session's streams and forwards each pair's connection, until the client goes
/// away (then the connections are dropped with this future).
pub async fn forward_streams<F: Forwarder>(
    mut streams: mpsc::Receiver<Stream>,
    sender: Sender,
    forwarder: F,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut connections = JoinSet::new();
    while let Some(stream) = streams.recv().await {
        while connections.try_join_next().is_some() {}
        let request = stream
            .header(REQUEST_ID_HEADER)
            .unwrap_or_default()
            .to_string();
        let pair = pairs.entry(request.clone()).or_default();
        pair.port = pair
            .port
            .take()
            .or(stream.header(PORT_HEADER).map(String::from));
        if stream.header(STREAM_TYPE_HEADER) == Some(STREAM_TYPE_DATA) {
            pair.data = Some((stream.id, stream.data));
        } else {
            pair.error = Some(stream.id);
        }
        if let Pair {
            data: Some(_),
            error: Some(_),
            ..
        } = pair
        {
            let pair = pairs.remove(&request).expect("just seen");
            let (data, from_client) = pair.data.expect("checked");
            let error = pair.error.expect("checked");
            connections.spawn(connection(
                forwarder.clone(),
                pair.port.unwrap_or_default(),
                (data, error),
                from_client,
                sender.clone(),
            ));
        }
    }
}

/// Forwards one client connection (its data and error streams) and ends both streams.
async fn connection<F: Forwarder>(
    forwarder: F,
    port: String,
    (data, error): (u32, u32),
    from_client: mpsc::Receiver<Bytes>,
    sender: Sender,
) {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => {
            let (to_client, mut events) = mpsc::channel(QUEUE);
            let forwarding = forwarder.forward(port, from_client, to_client);
            let passing = async {
                while let Some(event) = events.recv().await {
                    let delivered = match event {
                        Event::Data(bytes) => sender.data(data, bytes).await,
                        Event::Error(message) => sender.data(error, Bytes::from(message)).await,
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
            sender.data(error, Bytes::from(message)).await;
        }
    }
    sender.finish(data).await;
    sender.finish(error).await;
}

#[cfg(test)]
mod tests;
