//! The channel WebSocket form of port forwarding (`v4.channel.k8s.io`, and `v5` with the
//! close signal; see `skiff_api::portforward`): one connection per port of the request, the
//! port first on each of its channels, then its bytes and errors. The socket closes once
//! every connection has ended, or at once when the client closes it.

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use skiff_api::portforward::{
    data_channel, data_message, error_channel, port_message, CLOSE_CHANNEL,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::forward::{Event, Forwarder};

/// Messages queued toward the client, and client data queued per port.
const QUEUE: usize = 64;

/// What the client sent.
pub enum Incoming {
    /// A binary message: a channel byte and its data.
    Binary(Bytes),
    /// The socket's end (a close, or an error).
    Closed,
}

/// Serves `ports` over one socket: `incoming` is what the client sends, `outgoing` takes
/// binary messages (`None`: close the socket normally). The close signal is read whichever
/// version the client asked for (a v4 client never sends it).
pub async fn serve<I, O, F>(mut incoming: I, mut outgoing: O, ports: Vec<u16>, forwarder: F)
where
    I: Stream<Item = Incoming> + Unpin,
    O: Sink<Option<Bytes>> + Unpin,
    F: Forwarder,
{
    // Room for every port's two announcements, made before the writer runs.
    let (out, mut queued) = mpsc::channel::<Bytes>(2 * ports.len() + QUEUE);
    let mut client_data = Vec::new();
    let mut connections = JoinSet::new();
    for (index, port) in ports.into_iter().enumerate() {
        for channel in [data_channel(index), error_channel(index)] {
            let _ = out.send(Bytes::from(port_message(channel, port))).await;
        }
        let (sender, from_client) = mpsc::channel(QUEUE);
        client_data.push(Some(sender));
        let (to_client, events) = mpsc::channel(QUEUE);
        connections.spawn({
            let forwarder = forwarder.clone();
            async move { forwarder.forward(port, from_client, to_client).await }
        });
        connections.spawn(pass_events(index, events, out.clone()));
    }
    drop(out);
    let reading = async {
        while let Some(Incoming::Binary(message)) = incoming.next().await {
            let Some((&channel, data)) = message.split_first() else {
                continue;
            };
            if channel == CLOSE_CHANNEL {
                let closed = data.first().map(|&c| usize::from(c) / 2);
                if let Some(sender) = closed.and_then(|i| client_data.get_mut(i)) {
                    *sender = None;
                }
                continue;
            }
            let index = usize::from(channel) / 2;
            if channel % 2 == 0 && !data.is_empty() {
                if let Some(Some(sender)) = client_data.get(index) {
                    let _ = sender.send(message.slice(1..)).await;
                }
            }
        }
    };
    let writing = async {
        while let Some(message) = queued.recv().await {
            if outgoing.send(Some(message)).await.is_err() {
                return;
            }
        }
        let _ = outgoing.send(None).await;
    };
    // Every connection ended (the writer's queue closed), or the client went away.
    tokio::select! {
        () = writing => {}
        () = reading => {}
    }
    connections.abort_all();
}

/// Passes one connection's events to the client on its port's channels.
async fn pass_events(index: usize, mut events: mpsc::Receiver<Event>, out: mpsc::Sender<Bytes>) {
    while let Some(event) = events.recv().await {
        let (channel, data) = match event {
            Event::Data(data) => (data_channel(index), data),
            Event::Error(message) => (error_channel(index), Bytes::from(message)),
        };
        if out
            .send(Bytes::from(data_message(channel, &data)))
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc::unbounded;

    use super::super::echo::{Echo, REFUSED};
    use super::*;

    #[tokio::test]
    async fn ports_are_announced_echoed_and_the_socket_closes_after_the_half_close() {
        let (client, incoming) = unbounded();
        let (outgoing, mut received) = unbounded();
        let session = tokio::spawn(serve(incoming, outgoing, vec![7000, 1], Echo));
        let mut announced = Vec::new();
        for _ in 0..4 {
            announced.push(received.next().await.flatten().expect("port"));
        }
        announced.sort();
        assert_eq!(
            announced,
            vec![
                Bytes::from_static(&[0, 0x58, 0x1b]),
                Bytes::from_static(&[1, 0x58, 0x1b]),
                Bytes::from_static(&[2, 1, 0]),
                Bytes::from_static(&[3, 1, 0]),
            ]
        );
        let mut refusal = vec![3];
        refusal.extend_from_slice(REFUSED.as_bytes());
        assert_eq!(received.next().await.flatten(), Some(Bytes::from(refusal)));
        client
            .unbounded_send(Incoming::Binary(Bytes::from_static(b"\x00hi")))
            .expect("send");
        assert_eq!(
            received.next().await.flatten(),
            Some(Bytes::from_static(b"\x00hi"))
        );
        client
            .unbounded_send(Incoming::Binary(Bytes::from_static(&[CLOSE_CHANNEL, 0])))
            .expect("send");
        assert_eq!(received.next().await, Some(None), "a normal close");
        session.await.expect("session ends");
    }
}
